"""Filing a case: one door for every channel, and the resident's filing.

Every new case, whichever door it came in by (a resident's filing, offline
intake, Open311, historical import), is built by ``build_case`` and written by
``write_case``: on PostgreSQL in one statement (``filing_sql.insert_case``:
the case, its events, media, notice, content check, idempotency answer and
gapless number), on SQLite through the ORM in the request's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.audit import state as audit_state
from app.complaints import admission, events, filing_sql, identity, repository
from app.complaints.schemas import ComplaintCreate, ComplaintFiled, ItemBrief, Location, UnitBrief
from app.complaints.service import check_media, hash_query_code, new_query_code, thresholds
from app.core.config import Settings
from app.core.errors import AppError, BadRequest
from app.disclosures import service as disclosures_service
from app.idempotency import service as idempotency
from app.media import service as media_service
from app.models import (
    Citizen,
    Complaint,
    ComplaintEvent,
    IdempotencyRecord,
    Item,
    Media,
    Notification,
    Region,
    TaxonomyVersion,
)
from app.models.enums import Channel, ComplaintStatus, RegionLevel
from app.moderation import service as moderation
from app.notifications import service as notify
from app.routing import refcache
from app.routing import service as routing_service
from app.routing.engine import RouteDecision
from app.wechat.client import SCENE_FORUM


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
    # 历史件补录: opened with ``now`` = its real receipt time; imported at this moment.
    imported_at: datetime | None = None


def build_case(
    new: NewCase, *, settings: Settings, now: datetime
) -> tuple[Complaint, list[ComplaintEvent]]:
    """A new case's row and its filed and routed events, not yet written.

    The row carries a provisional number; the gapless one is drawn by whoever
    writes it (``open_case`` or ``filing_sql.insert_case``)."""
    decision, village = new.decision, new.path[-1]
    complaint_id = uuid.uuid4().hex
    by_level = {r.level: r for r in new.path}
    yellow_at, orange_at = thresholds(settings).moments(new.received_at, decision.due_at)
    complaint = Complaint.built(
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
        query_code_hash=hash_query_code(complaint_id, new.query_code) if new.query_code else None,
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
        historical=new.imported_at is not None,
        imported_at=new.imported_at,
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
            **({"historical": True} if new.imported_at is not None else {}),
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
    return complaint, [filed, routed]


def local_day(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.timezone)).date()


async def _pin_taxonomy(
    session: AsyncSession, settings: Settings, version_id: int, now: datetime
) -> None:
    """From the first filing on, this taxonomy version is immutable. The cached
    version says whether that already happened, so the pin costs a statement
    only until the cache sees it (its trigger moves the token)."""
    tv = (await refcache.get(session, settings)).taxonomy
    if tv is None or tv.id != version_id or tv.first_used_at is None:
        await session.execute(
            update(TaxonomyVersion)
            .where(TaxonomyVersion.id == version_id, TaxonomyVersion.first_used_at.is_(None))
            .values(first_used_at=now)
        )


async def write_case(
    session: AsyncSession,
    complaint: Complaint,
    case_events: list[ComplaintEvent],
    *,
    taxonomy_version_id: int,
    media: list[Media],
    settings: Settings,
    now: datetime,
    notice: Notification | None = None,
    extra: tuple[Any, ...] = (),
    idempotent: filing_sql.Idempotent | None = None,
) -> None:
    """Write a built case and what goes with it; afterwards ``complaint`` holds
    its gapless number and is a persistent object of ``session`` (callers may
    go on changing it, as the historical import does).

    A notice's body may carry ``filing_sql.NUMBER`` where the number goes.
    Inserting the events queues them for the statistics projector (a trigger,
    migration 0017). ``idempotent`` is the answer kept for retries, sealed
    before the number is drawn (``replay_body`` reads the number back).
    """
    media_service.attach(
        media, f"complaint:{complaint.id}", now, forget_owner=complaint.identity_protected
    )
    await _pin_taxonomy(session, settings, taxonomy_version_id, now)
    day = local_day(settings, now)
    if filing_sql.supported(session):
        row = await filing_sql.insert_case(
            session,
            complaint=complaint,
            events=case_events,
            day=day,
            prefix=settings.tracking_prefix,
            notification=notice,
            extra=extra,
            media=media,
            idempotent=idempotent,
        )
        complaint.tracking_no = str(row[-1])
        for m in media:  # written by the statement; nothing left for the ORM to flush
            if m in session:
                session.expunge(m)
        # Every column as written (defaults included), so the object reads
        # without a lazy load, then persistent: later changes become UPDATEs.
        for key, value in filing_sql.row_values(complaint).items():
            if key not in complaint.__dict__:
                setattr(complaint, key, value)
        make_transient_to_detached(complaint)
        session.add(complaint)
        return
    session.add(complaint)
    session.add_all(case_events)
    session.add_all(extra)
    if notice is not None:
        session.add(notice)
    await session.flush()
    # The day's counter row is the one every filing locks: take it last, so it
    # is held for the commit only, not for the statements above (bench/).
    seq = await repository.next_counter(session, day)
    complaint.tracking_no = f"{settings.tracking_prefix}{day:%Y%m%d}-{seq:06d}"
    if notice is not None:
        notice.body = notice.body.replace(filing_sql.NUMBER, complaint.tracking_no)
        notice.data = {**(notice.data or {}), "tracking_no": complaint.tracking_no}
    await session.flush()
    if idempotent is not None:
        await idempotency.store(
            session,
            idempotent.record_id,
            status_code=idempotent.status_code,
            sealed_body=idempotent.response,
        )


async def open_case(
    session: AsyncSession, new: NewCase, *, settings: Settings, now: datetime
) -> Complaint:
    """Register a case (offline intake, historical import): its gapless
    number, the filed and routed events, its media, and the taxonomy pin."""
    complaint, case_events = build_case(new, settings=settings, now=now)
    await write_case(
        session,
        complaint,
        case_events,
        taxonomy_version_id=new.item.version_id,
        media=new.media,
        settings=settings,
        now=now,
    )
    return complaint


@dataclass(frozen=True, slots=True)
class Filer:
    """Who files through ``file``: a resident in the mini-program, or an outside
    system (Open311) relaying a resident's report, which has no citizen account."""

    channel: Channel
    actor_kind: str
    actor_id: int
    citizen: Citizen | None = None
    priority_flags: tuple[str, ...] = ()
    priority: int = 0


@dataclass(frozen=True, slots=True)
class _Built:
    """A filing built and not yet written; ``filed`` is its answer, with
    ``filing_sql.NUMBER`` where the number goes."""

    complaint: Complaint
    case_events: list[ComplaintEvent]
    version_id: int
    media: list[Media]
    notice: Notification | None
    extra: tuple[Any, ...]
    filed: ComplaintFiled


async def _build(
    session: AsyncSession,
    *,
    filer: Filer,
    body: ComplaintCreate,
    settings: Settings,
    now: datetime,
    gate: moderation.ContentGate | None,
    protected: bool = True,
) -> _Built | None:
    """None when ``protected`` is False and the case is protected (an
    accusation, or anonymous): its sealed identity carries the resident's
    openid, which only a loaded resident has."""
    citizen = filer.citizen
    item_code, region_code = body.item_code, body.region_code
    if body.disclosure_id is not None:
        # "Ask about this line": the disclosure fixes the village and suggests the item.
        disclosure, suggested = await disclosures_service.for_question(
            session, body.disclosure_id, body.disclosure_row, region_code
        )
        item_code, region_code = item_code or suggested, disclosure.region_code
    assert item_code is not None and region_code is not None  # the schema requires them
    item = await routing_service.current_item(session, item_code, settings=settings)
    # Naming the accused's level makes it an accusation, whatever the item.
    accusation = item.klass.value == "accusation" or body.accused_level is not None
    if not protected and (accusation or body.anonymous):
        return None
    path = await routing_service.region_chain(session, region_code, settings)
    village = path[-1]
    if village.level is not RegionLevel.village:
        raise BadRequest(f"请选择具体的村（社区），{village.name} 是{village.level.label}区划")
    media = await check_media(session, body.media_ids, citizen) if citizen is not None else []
    # WeChat content security, before anything is written: risky is a 422. It checks
    # what a mini-program user wrote (it needs their openid); an integrator's filing
    # (Open311) did not come through the mini-program and is not published by it.
    text = (
        await moderation.check_text(
            gate, body.content, citizen=citizen, scene=SCENE_FORUM, what="反映内容", now=now
        )
        if citizen is not None
        else None
    )
    decision = await routing_service.decide(
        session,
        item=item,
        region_code=village.code,
        received_at=now,
        settings=settings,
        accusation=accusation,
        accused_level=body.accused_level,
    )
    query_code = new_query_code() if body.anonymous else None
    new = NewCase(
        item=item,
        path=path,
        decision=decision,
        channel=filer.channel,
        content=body.content,
        anonymous=body.anonymous,
        accusation=accusation,
        accused_level=body.accused_level,
        received_at=now,
        actor_kind=filer.actor_kind,
        actor_id=filer.actor_id,
        citizen_id=citizen.id if citizen is not None else None,
        # Sealed with a protected case's identity only; a plain one keeps the id.
        openid=citizen.openid if citizen is not None and (accusation or body.anonymous) else None,
        priority=filer.priority,
        priority_flags=list(filer.priority_flags),
        contact_name=body.contact_name,
        contact_phone=body.contact_phone,
        query_code=query_code,
        location=body.location,
        media=media,
        disclosure_id=body.disclosure_id,
        disclosure_row=body.disclosure_row,
    )
    complaint, case_events = build_case(new, settings=settings, now=now)
    check = moderation.text_check_row(
        text, target=f"complaint:{complaint.id}", complaint=complaint, now=now
    )
    tz = ZoneInfo(settings.timezone)
    # The acceptance notice the resident is owed (三个100%: 受理100%告知).
    notice = notify.citizen_notice(
        complaint,
        kind="filed",
        title="诉求已登记",
        body=(
            f"您反映的问题已登记（编号 {filing_sql.NUMBER}），由{decision.unit.name}负责，"
            f"将于 {decision.accept_due_at.astimezone(tz):%m月%d日} 前受理。"
        ),
        now=now,
        slots={"unit": decision.unit.name},
    )
    # Built once: the number goes in after the case is written.
    filed = ComplaintFiled(
        id=complaint.id,
        tracking_no=filing_sql.NUMBER,
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
    return _Built(
        complaint,
        case_events,
        item.version_id,
        media,
        notice,
        (check,) if check is not None else (),
        filed,
    )


def _kept(filed: ComplaintFiled) -> dict[str, Any]:
    """The stored answer leaves the number out (on PostgreSQL it is drawn
    inside the statement, after the answer is sealed): a replay reads it back
    from the case (``replay_body``)."""
    return filed.model_dump(mode="json") | {"tracking_no": None}


async def file(
    session: AsyncSession,
    *,
    citizen: Citizen | None = None,
    body: ComplaintCreate,
    settings: Settings,
    now: datetime,
    gate: moderation.ContentGate | None = None,
    filer: Filer | None = None,
    record: IdempotencyRecord | None = None,
) -> ComplaintFiled:
    """A filing through the API (a resident, or Open311 for one), and the
    answer ``record`` keeps for retries."""
    if filer is None:
        assert citizen is not None
        filer = Filer(Channel.online, "citizen", citizen.id, citizen)
    built = await _build(session, filer=filer, body=body, settings=settings, now=now, gate=gate)
    assert built is not None  # protected cases are built here
    complaint = built.complaint
    kept = (
        filing_sql.Idempotent(record.id, 201, idempotency.sealed(record, _kept(built.filed)))
        if record is not None
        else None
    )
    await write_case(
        session,
        complaint,
        built.case_events,
        taxonomy_version_id=built.version_id,
        media=built.media,
        settings=settings,
        now=now,
        notice=built.notice,
        extra=built.extra,
        idempotent=kept,
    )
    return built.filed.model_copy(update={"tracking_no": complaint.tracking_no})


async def file_admitting(
    session: AsyncSession,
    *,
    ticket: admission.Ticket,
    body: ComplaintCreate,
    settings: Settings,
    now: datetime,
) -> ComplaintFiled | idempotency.Replay | None:
    """A resident's filing with its admission in the case's own statement
    (``admission.Ticket``): one round trip on PostgreSQL, WeChat content
    security off. Built from the token alone, before the session is checked.

    None where the two statements must answer instead: a protected case (its
    sealed identity needs the resident's openid), or a filing that cannot be
    built (a bad region, an unknown item: as before, a dead session's 401, a
    retry's answer or a 429 comes first, so ``admission.admit`` runs first)."""
    citizen = Citizen.built(id=ticket.token.citizen_id)
    filer = Filer(Channel.online, "citizen", citizen.id, citizen)
    try:
        built = await _build(
            session, filer=filer, body=body, settings=settings, now=now, gate=None, protected=False
        )
    except AppError:
        return None
    if built is None:
        return None
    complaint = built.complaint
    media_service.attach(
        built.media, f"complaint:{complaint.id}", now, forget_owner=complaint.identity_protected
    )
    await _pin_taxonomy(session, settings, built.version_id, now)
    try:
        row = await filing_sql.insert_case(
            session,
            complaint=complaint,
            events=built.case_events,
            day=local_day(settings, now),
            prefix=settings.tracking_prefix,
            notification=built.notice,
            extra=built.extra,
            media=built.media,
            admission=ticket,
            answer=_kept(built.filed),
        )
    finally:
        # Attached by the statement, or refused with the case: either way
        # nothing for the session's end to flush (a replay commits the session).
        for m in built.media:
            if m in session:
                session.expunge(m)
    settled = await admission.settle(session, ticket, row, now)
    if settled is not None:
        return settled
    number = row[-1]
    assert number is not None  # admitted, so written (the same limits, judged twice)
    return built.filed.model_copy(update={"tracking_no": str(number)})


async def replay_body(session: AsyncSession, body: dict[str, Any]) -> dict[str, Any]:
    """A stored filing answer, with the number filled in from its case, in the
    first answer's field order (the sealed copy is stored with sorted keys), so
    a retry gets the same bytes."""
    if body.get("tracking_no") is None and isinstance(body.get("id"), str):
        number = await repository.tracking_no_of(session, body["id"])
        if number is None:
            # Written answered by a filing then refused (admission.settle drops
            # it again): no case behind it, so as good as still running.
            raise idempotency.IdempotencyInFlight("相同的请求正在处理中，请稍后查看结果")
        body = {**body, "tracking_no": number}
    try:
        return ComplaintFiled.model_validate(body).model_dump(mode="json")
    except ValueError:  # an answer stored in another shape: as it was
        return body
