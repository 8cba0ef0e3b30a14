"""Offline intake (一门受理): visits, calls, letters, door-to-door findings and
agents filing for a resident, routed exactly like online filings, with the
real received time so deadlines count from when it really came in."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import events, repository
from app.complaints.schemas import PHONE_RE
from app.complaints.service import thresholds
from app.core.config import Settings
from app.core.errors import BadRequest, Forbidden
from app.models import Complaint, Media, StaffUser, TaxonomyVersion
from app.models.enums import Channel, ComplaintStatus, MediaStatus, RegionLevel, StaffRole
from app.regions import service as regions_service
from app.routing import service as routing_service
from app.stats import rollup
from app.workflow.machine import Priority, priority_score
from app.workflow.schemas import OfflineIntake

MAX_BACKDATE = timedelta(days=30)


async def register(
    session: AsyncSession,
    user: StaffUser,
    body: OfflineIntake,
    *,
    now: datetime,
    settings: Settings,
) -> str:
    if user.role not in (StaffRole.supervisor, StaffRole.leader, StaffRole.agent):
        raise Forbidden("只有纪检干部和代办员可以登记")
    if body.channel is Channel.online:
        raise BadRequest("线下登记请选择来访、来电、来信、走访发现或代办")
    if user.role is StaffRole.agent and body.channel is not Channel.agent:
        raise BadRequest("代办员登记的渠道应为“代办”")
    received = body.received_at or now
    if received.tzinfo is None:
        raise BadRequest("受理时间须带时区，例如 2026-11-20T09:30:00+08:00")
    if received > now + timedelta(minutes=5):
        raise BadRequest("受理时间不能晚于现在")
    if received < now - MAX_BACKDATE:
        raise BadRequest("受理时间不能早于 30 天前；更早的事项请按历史件补录")
    phone = (body.reporter_phone or "").replace(" ", "") or None
    if phone and not PHONE_RE.fullmatch(phone):
        raise BadRequest("联系电话格式不正确")
    if (
        not body.anonymous
        and not (body.reporter_name and phone)
        and body.channel is not Channel.door_to_door
    ):
        raise BadRequest("实名登记请填写反映人姓名和电话")
    item = await routing_service.current_item(session, body.item_code)
    path = await regions_service.get_chain(session, body.region_code)
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
    media: list[Media] = []
    if body.media_ids:
        found = {m.id: m for m in await repository.media_by_ids(session, body.media_ids)}
        for mid in body.media_ids:
            m = found.get(mid)
            if m is None or m.owner_staff_id != user.id or m.status is not MediaStatus.ready:
                raise BadRequest(f"材料 {mid} 不存在或不可用")
            media.append(m)
    tz = ZoneInfo(settings.timezone)
    day = now.astimezone(tz).date()
    seq = await repository.next_counter(session, day)
    by_level = {r.level: r for r in path}
    flags = {Priority(f) for f in body.priority_flags}
    yellow_at, orange_at = thresholds(settings).moments(received, decision.due_at)
    complaint = Complaint(
        id=uuid.uuid4().hex,
        tracking_no=f"{settings.tracking_prefix}{day:%Y%m%d}-{seq:06d}",
        channel=body.channel,
        citizen_id=None,
        filed_by_staff_id=user.id,
        item_id=item.id,
        item_code=item.code,
        region_code=village.code,
        township_code=by_level[RegionLevel.township].code,
        county_code=by_level[RegionLevel.county].code,
        content=body.content.strip(),
        anonymous=body.anonymous,
        contact_name=None if body.anonymous else body.reporter_name,
        contact_phone=None if body.anonymous else phone,
        reporter_name=None if body.anonymous else body.reporter_name,
        accusation=accusation,
        accused_level=accused,
        status=ComplaintStatus.submitted,
        version=1,
        unit_id=decision.unit.id,
        department_code=decision.department_code,
        department_region_code=decision.department_region_code,
        cadre_id=decision.cadre_id,
        tier=decision.tier,
        time_limit_days=decision.time_limit_days,
        received_at=received,
        accept_due_at=decision.accept_due_at,
        due_at=decision.due_at,
        routing_trace=list(decision.trace),
        yellow_at=yellow_at,
        orange_at=orange_at,
        priority=priority_score(flags),
        priority_flags=sorted(f.value for f in flags),
        reopen_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(complaint)
    filed = events.build(
        complaint,
        None,
        kind="filed",
        public=True,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        to_status=ComplaintStatus.submitted.value,
        note=f"已登记，由{decision.unit.name}负责办理",
        data={
            "channel": body.channel.value,
            "received_at": received.isoformat(),
            "unit_id": decision.unit.id,
        },
    )
    routed = events.build(
        complaint,
        filed,
        kind="routed",
        public=False,
        actor_kind="system",
        actor_id=None,
        at=now,
        data={
            "unit_id": decision.unit.id,
            "cadre_id": decision.cadre_id,
            "trace": list(decision.trace),
        },
    )
    session.add_all([filed, routed])
    await rollup.apply(session, complaint, filed)
    for m in media:
        m.status, m.attached_to, m.attached_at = (
            MediaStatus.attached,
            f"complaint:{complaint.id}",
            now,
        )
    version = await session.get(TaxonomyVersion, item.version_id)
    if version is not None and version.first_used_at is None:
        version.first_used_at = now
    await session.flush()
    return complaint.id
