"""Demo accounts around 通川区凤北街道 (seed 001's 双鱼湖社区 story), printed for newcomers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.enums import StaffRole
from app.staff import repository as staff_repository
from app.staff import service as staff_service
from app.staff.schemas import StaffCreate

# (username, role, name, unit code, department code); handlers sit in 通川区.
DEMO_STAFF: list[tuple[str, StaffRole, str, str | None, str | None]] = [
    ("admin", StaffRole.admin, "系统管理员", None, None),
    ("fengbei.zhang", StaffRole.supervisor, "张欣（凤北街道纪工委书记）", "XZ-511702005", None),
    ("fengbei.li", StaffRole.supervisor, "李敏（凤北街道纪工委干部）", "XZ-511702005", None),
    ("fengbei.leader", StaffRole.leader, "王强（凤北街道分管领导）", "XZ-511702005", None),
    ("fengbei.chief", StaffRole.leader, "赵红（凤北街道主要领导）", "XZ-511702005", None),
    ("tongchuan.jw", StaffRole.supervisor, "陈静（通川区纪委监委信访室）", "JW-511702", None),
    ("tongchuan.leader", StaffRole.leader, "刘波（通川区纪委监委主要领导）", "JW-511702", None),
    ("tongchuan.edu", StaffRole.handler, "赵磊（通川区教育局承办人）", None, "D001"),
    ("tongchuan.agri", StaffRole.handler, "孙涛（通川区农业农村局承办人）", None, "D037"),
    ("fengbei.agent", StaffRole.agent, "周芳（凤北街道信访代办员）", "XZ-511702005", None),
    # 双鱼湖社区: the clerk drafts disclosures, a committee member publishes them.
    ("shuangyu.clerk", StaffRole.clerk, "李会计（双鱼湖社区村务公开经办人）", None, None),
    ("shuangyu.committee", StaffRole.committee, "何静（双鱼湖社区村务监督委员会主任）", None, None),
]
VILLAGE_ROLES = (StaffRole.clerk, StaffRole.committee)


async def create_demo(session: AsyncSession, *, now: datetime, password: str) -> list[str]:
    lines = [f"demo staff accounts (password for all: {password}):"]
    for username, role, name, unit, department in DEMO_STAFF:
        existing = await staff_repository.get_by_username(session, username)
        if existing is None:
            await staff_service.create_staff(
                session,
                StaffCreate(
                    username=username,
                    password=password,
                    role=role,
                    display_name=name,
                    unit_code=unit,
                    department_code=department,
                    region_code=(
                        "511702000000"
                        if department
                        else "511702005001"
                        if role in VILLAGE_ROLES
                        else None
                    ),
                ),
                now=now,
            )
            state = "created"
        else:
            state = "exists"
        where = unit or department or "-"
        lines.append(f"  {username:<18} {role.value:<10} {where:<14} {name}  [{state}]")
    lines.append("demo QR scene for 双鱼湖社区: 511702005001 (GET /api/v1/scenes/511702005001)")
    return lines


# What each demo role does in the console (scripts/run.sh prints it).
ROLE_WORK = {
    StaffRole.admin: "全部案件、统计分析、回访抽查（只读样本）",
    StaffRole.supervisor: "案件队列：受理、分派、办结、会签；线下登记；统计分析",
    StaffRole.leader: "待我会签、督办；统计分析",
    StaffRole.handler: "转办到本部门的案件：答复、申请延期、办结",
    StaffRole.agent: "代群众线下登记、打印回执",
    StaffRole.clerk: "村务公开：起草、导入",
    StaffRole.committee: "村务公开：审核、发布",
}


def guide(base_url: str, password: str) -> str:
    """The console's address and the demo accounts, for a newcomer's first sign-in."""
    lines = [
        f"staff console (工作台): {base_url.rstrip('/')}/console/  (API docs: {base_url}/docs)",
        f"demo accounts, password for all: {password}",
    ]
    for username, role, name, unit, _ in DEMO_STAFF:
        work = ROLE_WORK.get(role, "")
        if unit and unit.startswith("JW-") and role is not StaffRole.handler:
            work += "；回访抽查（纪委监委）"
        lines.append(f"  {username:<20} {name}  — {work}")
    return "\n".join(lines)
