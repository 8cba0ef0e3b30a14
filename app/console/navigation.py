"""The console's top-level pages and who sees each.

Showing a page is presentation only: every page's service checks the role
again, so a hidden entry is a convenience, never the protection. Add a page
by adding an entry here (its router goes into ``app/console/router.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models import StaffUser, SupervisionUnit
from app.models.enums import StaffRole, UnitKind

CASE_WORKERS = frozenset(
    {StaffRole.supervisor, StaffRole.leader, StaffRole.handler, StaffRole.agent, StaffRole.admin}
)
# Who may register an offline filing: app/workflow/intake.py decides; this only
# hides the link from the others.
REGISTRARS = frozenset({StaffRole.supervisor, StaffRole.leader, StaffRole.agent})
# Who may read statistics: app/stats/service.py decides (scope_filter).
STATS_READERS = frozenset({StaffRole.supervisor, StaffRole.leader, StaffRole.admin})

ROLE_LABELS = {
    StaffRole.admin: "系统管理员",
    StaffRole.supervisor: "纪检干部",
    StaffRole.handler: "承办人",
    StaffRole.agent: "代办员",
    StaffRole.leader: "领导",
    StaffRole.clerk: "村务公开经办人",
    StaffRole.committee: "村务监督委员会成员",
}


@dataclass(frozen=True, slots=True)
class NavEntry:
    key: str
    label: str
    path: str
    roles: frozenset[StaffRole] | None = None  # None: every role
    commission_only: bool = False  # only staff of a 纪委监委 (and administrators)


NAV: list[NavEntry] = [
    NavEntry("queue", "案件队列", "/console/queue", CASE_WORKERS),
    NavEntry("intake", "线下登记", "/console/intake", REGISTRARS),
    NavEntry("inbox", "待办消息", "/console/inbox"),
    NavEntry("dashboard", "统计分析", "/console/dashboard", STATS_READERS),
    NavEntry("callbacks", "回访抽查", "/console/callbacks", STATS_READERS, commission_only=True),
    NavEntry(
        "disclosures",
        "村务公开",
        "/console/disclosures",
        frozenset({StaffRole.clerk, StaffRole.committee, StaffRole.admin, StaffRole.supervisor}),
    ),
    NavEntry("qrcodes", "二维码海报", "/console/admin/qrcodes", frozenset({StaffRole.supervisor})),
    NavEntry("admin", "系统管理", "/console/admin", frozenset({StaffRole.admin})),
    # The service admits only a commission's cadres and administrators.
    NavEntry(
        "historical",
        "历史件补录",
        "/console/historical",
        frozenset({StaffRole.admin, StaffRole.supervisor, StaffRole.leader}),
        commission_only=True,
    ),
]


def entries_for(user: StaffUser, unit: SupervisionUnit | None = None) -> list[NavEntry]:
    commission = user.role is StaffRole.admin or (
        unit is not None and unit.kind is UnitKind.commission
    )
    return [
        e
        for e in NAV
        if (e.roles is None or user.role in e.roles) and (commission or not e.commission_only)
    ]


def home_for(user: StaffUser) -> str:
    """Where a user lands after sign-in: their first page."""
    entries = entries_for(user)
    return entries[0].path if entries else "/console/inbox"
