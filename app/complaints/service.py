"""Filing and following a complaint, from the resident's side."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import state as audit_state
from app.complaints import events, identity, repository
from app.complaints.schemas import (
    ComplaintCreate,
    ComplaintDetail,
    ComplaintFiled,
    ComplaintSummary,
    ItemBrief,
    Location,
    MediaLink,
    SupplementCreate,
    TimelineEntry,
    UnitBrief,
)
from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, NotFound
from app.core.storage import MediaStore
from app.disclosures import service as disclosures_service
from app.disclosures import views as disclosure_views
from app.media import service as media_service
from app.media.dependencies import Uploader
from app.models import Citizen, Complaint, ComplaintEvent, Item, Media, Region, TaxonomyVersion
from app.models.enums import Channel, ComplaintStatus, RegionLevel
from app.notifications import service as notify
from app.routing import refcache
from app.routing import service as routing_service
from app.routing.engine import RouteDecision
from app.workflow.machine import CardThresholds

QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
EVENT_LABELS = {
    "filed": "已提交",
    "accepted": "已受理",
    "rejected": "不予受理",
    "assigned": "已分派承办",
    "transferred": "已转职能部门办理",
    "escalated": "已上报上级",
    "replied": "阶段性答复",
    "extended": "办理期限延长",
    "resolved": "已办结",
    "signed": "会签",
    "closed": "已销号",
    "reopened": "重新办理",
    "supplemented": "群众补充材料",
    "rated": "满意度评价",
    "identity_viewed": "查看反映人身份",
}


# Kinds whose note is written for the resident: their own steps (filed,
# supplemented, rated), the system's closing line, and, in events written
# before ``public_reply`` existed, the three actions whose note was the public
# text (reject reason, reply, result). Every other kind's note is internal.
NOTE_IS_PUBLIC = frozenset(
    {"filed", "supplemented", "rated", "closed", "rejected", "replied", "resolved"}
)


def public_text(event: ComplaintEvent) -> str:
    """What the resident's timeline shows for a public event.

    A staff action's event carries its public reply in ``data`` (inside the
    hash chain) and its internal note in ``note``; the reply is shown, the
    note never is. Events without the key keep the meaning they were written
    with: the note shows only for the kinds in ``NOTE_IS_PUBLIC``, so an old
    escalation, transfer or extension reason stays internal.
    """
    data = event.data or {}
    if "public_reply" in data:
        return str(data["public_reply"] or "")
    return event.note if event.kind in NOTE_IS_PUBLIC else ""


class ComplaintNotFound(NotFound):
    code = "complaint_not_found"


class ComplaintClosed(Conflict):
    code = "complaint_closed"


def thresholds(settings: Settings) -> CardThresholds:
    return CardThresholds(
        yellow=settings.card_yellow_fraction, orange=settings.card_orange_fraction
    )


def _hash_code(complaint_id: str, code: str) -> str:
    return hashlib.sha256(f"{complaint_id}:{code.strip().upper()}".encode()).hexdigest()


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    if len(phone) >= 11:
        return phone[:3] + "****" + phone[-4:]
    return phone[:2] + "****" + phone[-2:]


async def _check_media(
    session: AsyncSession,
    media_ids: Sequence[str],
    citizen: Citizen,
    *,
    already: Sequence[Media] = (),
) -> list[Media]:
    chosen = await media_service.claimable(session, media_ids, Uploader("citizen", citizen.id))
    media_service.check_case_limits([*already, *chosen])
    return chosen


@dataclass
class NewCase:
    """Everything a new case needs, whichever door it came in by."""

    item: Item
    path: list[Region]
    decision: RouteDecision
    channel: Channel
    content: str
    anonymous: bool
    accusation: bool
    accused_level: RegionLevel | None
    received_at: datetime
    actor_kind: str
    actor_id: int
    citizen_id: int | None = None
    openid: str | None = None
    filed_by_staff_id: int | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    reporter_name: str | None = None
    query_code: str | None = None
    location: Location | None = None
    priority: int = 0
    priority_flags: list[str] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    disclosure_id: int | None = None
    disclosure_row: int | None = None


async def open_case(
    session: AsyncSession, new: NewCase, *, settings: Settings, now: datetime
) -> Complaint:
    """Register a case (one door for every channel): its gapless number, the
    filed and routed events, the rollups, its media, and the taxonomy pin."""
    decision, village = new.decision, new.path[-1]
    complaint_id = uuid.uuid4().hex
    tz = ZoneInfo(settings.timezone)
    local_day = now.astimezone(tz).date()
    by_level = {r.level: r for r in new.path}
    yellow_at, orange_at = thresholds(settings).moments(new.received_at, decision.due_at)
    complaint = Complaint(
        id=complaint_id,
        disclosure_id=new.disclosure_id,
        disclosure_row=new.disclosure_row,
        # Provisional and unique; the gapless number is taken at the very end.
        tracking_no=f"~{complaint_id[:23]}",
        channel=new.channel,
        filed_by_staff_id=new.filed_by_staff_id,
        item_id=new.item.id,
        item_code=new.item.code,
        region_code=village.code,
        township_code=by_level[RegionLevel.township].code,
        county_code=by_level[RegionLevel.county].code,
        content=new.content,
        anonymous=new.anonymous,
        query_code_hash=_hash_code(complaint_id, new.query_code) if new.query_code else None,
        location_lat=new.location.lat if new.location else None,
        location_lng=new.location.lng if new.location else None,
        location_address=new.location.address if new.location else None,
        accusation=new.accusation,
        accused_level=new.accused_level,
        status=ComplaintStatus.submitted,
        version=1,
        unit_id=decision.unit.id,
        department_code=decision.department_code,
        department_region_code=decision.department_region_code,
        cadre_id=decision.cadre_id,
        tier=decision.tier,
        time_limit_days=decision.time_limit_days,
        received_at=new.received_at,
        accept_due_at=decision.accept_due_at,
        due_at=decision.due_at,
        routing_trace=list(decision.trace),
        yellow_at=yellow_at,
        orange_at=orange_at,
        priority=new.priority,
        priority_flags=list(new.priority_flags),
        reopen_count=0,
        created_at=now,
        updated_at=now,
    )
    # Sealed on a protected case (accusation, anonymous), plain otherwise.
    identity.store(
        complaint,
        identity.Identity(
            citizen_id=new.citizen_id,
            openid=new.openid,
            name=None if new.anonymous else new.contact_name,
            phone=None if new.anonymous else new.contact_phone,
            reporter_name=None if new.anonymous else new.reporter_name,
        ),
    )
    session.add(complaint)
    filed = events.build(
        complaint,
        None,
        kind="filed",
        public=True,
        actor_kind=new.actor_kind,
        actor_id=new.actor_id,
        at=now,
        to_status=ComplaintStatus.submitted.value,
        note=f"已登记，由{decision.unit.name}负责办理",
        data={
            "channel": new.channel.value,
            "unit_id": decision.unit.id,
            "received_at": new.received_at.isoformat(),
            "media_ids": [m.id for m in new.media],
            "identity_commitment": complaint.identity_commitment,
            **(
                {"disclosure_id": new.disclosure_id, "disclosure_row": new.disclosure_row}
                if new.disclosure_id is not None
                else {}
            ),
            # The row as filed, so `ydt audit verify` can replay it (app/audit/state.py).
            "state": audit_state.snapshot(complaint),
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
            "override_id": decision.override_id,
            "trace": list(decision.trace),
            "warnings": list(decision.warnings),
        },
    )
    # Inserting them queues both for the statistics projector (migration 0017).
    session.add_all([filed, routed])
    media_service.attach(
        new.media, f"complaint:{complaint_id}", now, forget_owner=complaint.identity_protected
    )
    # From the first filing on, this taxonomy version is immutable. The cached
    # version says whether that already happened, so the pin costs a
    # statement only until the cache sees it (its trigger moves the token).
    tv = (await refcache.get(session, settings)).taxonomy
    if tv is None or tv.id != new.item.version_id or tv.first_used_at is None:
        await session.execute(
            update(TaxonomyVersion)
            .where(
                TaxonomyVersion.id == new.item.version_id, TaxonomyVersion.first_used_at.is_(None)
            )
            .values(first_used_at=now)
        )
    await session.flush()
    # The day's counter row is the one every filing locks: take it last, so it
    # is held for the commit only, not for the twenty statements above (bench/).
    seq = await repository.next_counter(session, local_day)
    complaint.tracking_no = f"{settings.tracking_prefix}{local_day:%Y%m%d}-{seq:06d}"
    await session.flush()
    return complaint


async def file(
    session: AsyncSession,
    *,
    citizen: Citizen,
    body: ComplaintCreate,
    settings: Settings,
    now: datetime,
) -> ComplaintFiled:
    item_code, region_code = body.item_code, body.region_code
    if body.disclosure_id is not None:
        # "Ask about this line": the disclosure fixes the village and suggests the item.
        disclosure, suggested = await disclosures_service.for_question(
            session, body.disclosure_id, body.disclosure_row, region_code
        )
        item_code, region_code = item_code or suggested, disclosure.region_code
    assert item_code is not None and region_code is not None  # the schema requires them
    item = await routing_service.current_item(session, item_code, settings=settings)
    path = await routing_service.region_chain(session, region_code, settings)
    village = path[-1]
    if village.level is not RegionLevel.village:
        raise BadRequest(f"请选择具体的村（社区），{village.name} 是{village.level.label}区划")
    media = await _check_media(session, body.media_ids, citizen)
    # Naming the accused's level makes it an accusation, whatever the item.
    accusation = item.klass.value == "accusation" or body.accused_level is not None
    decision = await routing_service.decide(
        session,
        item=item,
        region_code=village.code,
        received_at=now,
        settings=settings,
        accusation=accusation,
        accused_level=body.accused_level,
    )
    query_code = (
        "".join(secrets.choice(QUERY_CODE_ALPHABET) for _ in range(8)) if body.anonymous else None
    )
    complaint = await open_case(
        session,
        NewCase(
            item=item,
            path=path,
            decision=decision,
            channel=Channel.online,
            content=body.content,
            anonymous=body.anonymous,
            accusation=accusation,
            accused_level=body.accused_level,
            received_at=now,
            actor_kind="citizen",
            actor_id=citizen.id,
            citizen_id=citizen.id,
            openid=citizen.openid,
            contact_name=body.contact_name,
            contact_phone=body.contact_phone,
            query_code=query_code,
            location=body.location,
            media=media,
            disclosure_id=body.disclosure_id,
            disclosure_row=body.disclosure_row,
        ),
        settings=settings,
        now=now,
    )
    tz = ZoneInfo(settings.timezone)
    # The acceptance notice the resident is owed (三个100%: 受理100%告知).
    notify.to_citizen(
        session,
        complaint,
        kind="filed",
        title="诉求已登记",
        body=(
            f"您反映的问题已登记（编号 {complaint.tracking_no}），由{decision.unit.name}负责，"
            f"将于 {decision.accept_due_at.astimezone(tz):%m月%d日} 前受理。"
        ),
        now=now,
    )
    await session.flush()
    return ComplaintFiled(
        id=complaint.id,
        tracking_no=complaint.tracking_no,
        status=complaint.status,
        status_label=complaint.status.label,
        accept_due_at=complaint.accept_due_at,
        due_at=complaint.due_at,
        unit=UnitBrief(id=decision.unit.id, code=decision.unit.code, name=decision.unit.name),
        item=ItemBrief(code=item.code, name=item.name),
        region_name=village.full_name,
        created_at=now,
        query_code=query_code,
    )


def _summary(row: repository.SummaryRow) -> ComplaintSummary:
    c, item_name, region_name, unit_name = row
    return ComplaintSummary(
        id=c.id,
        tracking_no=c.tracking_no,
        status=c.status,
        status_label=c.status.label,
        item=ItemBrief(code=c.item_code, name=item_name),
        region_name=region_name,
        unit_name=unit_name,
        created_at=c.created_at,
        due_at=c.due_at,
    )


async def mine(
    session: AsyncSession, citizen: Citizen, *, limit: int, offset: int
) -> list[ComplaintSummary]:
    return [
        _summary(r) for r in await repository.mine(session, citizen.id, limit=limit, offset=offset)
    ]


async def _detail(
    session: AsyncSession,
    row: repository.SummaryRow,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
    with_media: bool,
) -> ComplaintDetail:
    c = row[0]
    # The resident's own contact (an anonymous filing has none to show).
    filer = identity.Identity() if c.anonymous else identity.of(c)
    timeline = [
        TimelineEntry(
            kind=e.kind,
            label=EVENT_LABELS.get(e.kind, e.kind),
            at=e.created_at,
            status=ComplaintStatus(e.to_status) if e.to_status else None,
            note=public_text(e),
        )
        for e in await repository.public_events(session, c.id)
    ]
    links: list[MediaLink] = []
    if with_media:
        for m in await repository.attached_media(session, c.id):
            u = await media_service.urls(store, settings, m, now=now)
            links.append(
                MediaLink(
                    id=m.id,
                    kind=m.kind,
                    content_type=m.content_type,
                    url=u.url,
                    play_url=u.play_url,
                    poster_url=u.poster_url,
                )
            )
    return ComplaintDetail(
        **_summary(row).model_dump(),
        content=c.content,
        disclosure=await disclosure_views.reference(session, c.disclosure_id, c.disclosure_row),
        anonymous=c.anonymous,
        contact_name=filer.name,
        contact_phone=mask_phone(filer.phone),
        accept_due_at=c.accept_due_at,
        timeline=timeline,
        media=links,
    )


async def _owned_row(
    session: AsyncSession, complaint_id: str, citizen: Citizen
) -> repository.SummaryRow:
    row = await repository.summary(session, complaint_id) if len(complaint_id) == 32 else None
    # Someone else's case is "not found", never "forbidden": ids must not leak.
    if row is None or not identity.owned_by(row[0], citizen.id):
        raise ComplaintNotFound("未找到该反映事项")
    return row


async def detail(
    session: AsyncSession,
    complaint_id: str,
    citizen: Citizen,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
) -> ComplaintDetail:
    row = await _owned_row(session, complaint_id, citizen)
    return await _detail(session, row, store, settings, now=now, with_media=True)


async def track(
    session: AsyncSession,
    tracking_no: str,
    query_code: str,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
) -> ComplaintDetail:
    complaint = await repository.by_tracking_no(session, tracking_no.strip().upper())
    ok = (
        complaint is not None
        and complaint.query_code_hash is not None
        and hmac.compare_digest(complaint.query_code_hash, _hash_code(complaint.id, query_code))
    )
    if not ok or complaint is None:
        raise ComplaintNotFound("编号或查询码不正确")
    row = await repository.summary(session, complaint.id)
    assert row is not None
    return await _detail(session, row, store, settings, now=now, with_media=False)


async def supplement(
    session: AsyncSession,
    complaint_id: str,
    citizen: Citizen,
    body: SupplementCreate,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
) -> ComplaintDetail:
    row = await _owned_row(session, complaint_id, citizen)
    complaint = row[0]
    if not complaint.status.is_open:
        raise ComplaintClosed("该事项已办结或不予受理，无法补充；如有新情况请重新反映")
    existing = await repository.attached_media(session, complaint.id)
    media = await _check_media(session, body.media_ids, citizen, already=existing)
    await events.append(
        session,
        complaint,
        kind="supplemented",
        public=True,
        actor_kind="citizen",
        actor_id=citizen.id,
        at=now,
        note=body.content,
        data={"media_ids": list(body.media_ids)},
    )
    media_service.attach(
        media, f"complaint:{complaint.id}", now, forget_owner=complaint.identity_protected
    )
    complaint.updated_at = now
    await session.flush()
    return await _detail(session, row, store, settings, now=now, with_media=True)
