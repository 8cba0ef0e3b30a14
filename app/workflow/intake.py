"""Offline intake (一门受理): visits, calls, letters, door-to-door findings and
agents filing for a resident, routed exactly like online filings, with the
real received time so deadlines count from when it really came in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import filing as complaints_filing
from app.complaints import service as complaints_service
from app.complaints.schemas import PHONE_RE
from app.core.config import Settings
from app.core.errors import BadRequest, Forbidden
from app.media import service as media_service
from app.media.dependencies import Uploader
from app.models import StaffUser
from app.models.enums import Channel, RegionLevel, StaffRole
from app.routing import service as routing_service
from app.workflow.machine import Priority, priority_score
from app.workflow.schemas import OfflineIntake

MAX_BACKDATE = timedelta(days=30)
TOO_OLD = (
    "受理时间不能早于 30 天前；更早的事项请按历史件补录"
    "（工作台“历史件补录”导入 Excel，或 POST /api/v1/staff/historical-cases）"
)


@dataclass(frozen=True, slots=True)
class Registered:
    """The new case, and its query code: shown on this answer (and its
    receipt) once, stored only as a hash."""

    complaint_id: str
    query_code: str | None


async def register(
    session: AsyncSession,
    user: StaffUser,
    body: OfflineIntake,
    *,
    now: datetime,
    settings: Settings,
) -> Registered:
    """A resident who came to the window, called or wrote follows the case
    like one who filed online: a query code is issued unless they decline."""
    if user.role not in (StaffRole.supervisor, StaffRole.leader, StaffRole.agent):
        raise Forbidden("只有纪检干部和代办员可以登记")
    if body.channel in (Channel.online, Channel.open311):
        raise BadRequest("线下登记请选择来访、来电、来信、走访发现或代办")
    if user.role is StaffRole.agent and body.channel is not Channel.agent:
        raise BadRequest("代办员登记的渠道应为“代办”")
    received = body.received_at or now
    if received.tzinfo is None:
        raise BadRequest("受理时间须带时区，例如 2026-11-20T09:30:00+08:00")
    if received > now + timedelta(minutes=5):
        raise BadRequest("受理时间不能晚于现在")
    if received < now - MAX_BACKDATE:
        raise BadRequest(TOO_OLD)
    phone = (body.reporter_phone or "").replace(" ", "") or None
    if phone and not PHONE_RE.fullmatch(phone):
        raise BadRequest("联系电话格式不正确")
    if (
        not body.anonymous
        and not (body.reporter_name and phone)
        and body.channel is not Channel.door_to_door
    ):
        raise BadRequest("实名登记请填写反映人姓名和电话")
    item = await routing_service.current_item(session, body.item_code, settings=settings)
    path = await routing_service.region_chain(session, body.region_code, settings)
    village = path[-1]
    if village.level is not RegionLevel.village:
        raise BadRequest(f"请选择具体的村（社区），{village.name} 是{village.level.label}区划")
    accused = RegionLevel(body.accused_level) if body.accused_level else None
    accusation = item.klass.value == "accusation" or accused is not None
    decision = await routing_service.decide(
        session,
        item=item,
        region_code=village.code,
        received_at=received,
        settings=settings,
        accusation=accusation,
        accused_level=accused,
    )
    media = await media_service.claimable(session, body.media_ids, Uploader("staff", user.id))
    media_service.check_case_limits(media)
    flags = {Priority(f) for f in body.priority_flags}
    query_code = None if body.decline_query_code else complaints_service.new_query_code()
    complaint = await complaints_filing.open_case(
        session,
        complaints_filing.NewCase(
            item=item,
            path=path,
            decision=decision,
            channel=body.channel,
            content=body.content.strip(),
            anonymous=body.anonymous,
            accusation=accusation,
            accused_level=accused,
            received_at=received,
            actor_kind="staff",
            actor_id=user.id,
            filed_by_staff_id=user.id,
            contact_name=body.reporter_name,
            contact_phone=phone,
            reporter_name=body.reporter_name,
            priority=priority_score(flags),
            priority_flags=sorted(f.value for f in flags),
            media=media,
            query_code=query_code,
        ),
        settings=settings,
        now=now,
    )
    return Registered(complaint.id, query_code)
