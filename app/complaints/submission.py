"""A filing through the API: a resident in the mini-program, or an outside
system (Open311) relaying one. Built here (``_build``: the item, the village,
the uploads, WeChat content security, the route, the notice and the answer),
written by the one door every case comes in by (app/complaints/filing.py).

A resident's plain filing may take its admission inside the case's own
statement (``file_admitting``, app/complaints/admission.py); everything else
is admitted first and then written (``file``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import admission, filing, filing_sql, repository
from app.complaints.schemas import ComplaintCreate, ComplaintFiled, ItemBrief, UnitBrief
from app.complaints.service import check_media, new_query_code
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
    Media,
    Notification,
)
from app.models.enums import Channel, RegionLevel
from app.moderation import service as moderation
from app.notifications import service as notify
from app.routing import service as routing_service

# What WeChat's verdict names when it refuses a filing's text.
WHAT_CONTENT = "反映内容"


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
    text: moderation.TextCheck | None,
) -> _Built:
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
    path = await routing_service.region_chain(session, region_code, settings)
    village = path[-1]
    if village.level is not RegionLevel.village:
        raise BadRequest(f"请选择具体的村（社区），{village.name} 是{village.level.label}区划")
    media = await check_media(session, body.media_ids, citizen) if citizen is not None else []
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
    new = filing.NewCase(
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
        # Not the openid: it follows from the resident (notifications/delivery.py
        # reads it there), so a filing needs no more of the resident than the id.
        citizen_id=citizen.id if citizen is not None else None,
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
    complaint, case_events = filing.build_case(new, settings=settings, now=now)
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
    text: moderation.TextCheck | None = None,
    filer: Filer | None = None,
    record: IdempotencyRecord | None = None,
) -> ComplaintFiled:
    """A filing through the API (a resident, or Open311 for one), and the
    answer ``record`` keeps for retries.

    ``text`` is WeChat content security's verdict on ``body.content``, got
    by the caller before this session began (app/complaints/router.py), so
    no transaction waits on WeChat. It checks what a mini-program user wrote
    (it needs their openid); an integrator's filing (Open311) did not come
    through the mini-program and is not published by it."""
    if filer is None:
        assert citizen is not None
        filer = Filer(Channel.online, "citizen", citizen.id, citizen)
    built = await _build(session, filer=filer, body=body, settings=settings, now=now, text=text)
    complaint = built.complaint
    kept = (
        filing_sql.Idempotent(record.id, 201, idempotency.sealed(record, _kept(built.filed)))
        if record is not None
        else None
    )
    await filing.write_case(
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
    security off (its check needs the resident's openid before anything is
    written). Built from the token alone, before the session is checked.

    None where a filing cannot be built (a bad region, an unknown item): as
    before, a dead session's 401, a retry's answer or a 429 comes first, so
    ``admission.admit`` runs first."""
    citizen = Citizen.built(id=ticket.token.citizen_id)
    filer = Filer(Channel.online, "citizen", citizen.id, citizen)
    try:
        built = await _build(session, filer=filer, body=body, settings=settings, now=now, text=None)
    except AppError:
        return None
    complaint = built.complaint
    media_service.attach(
        built.media, f"complaint:{complaint.id}", now, forget_owner=complaint.identity_protected
    )
    await filing.pin_taxonomy(session, settings, built.version_id, now)
    try:
        row = await filing_sql.insert_case(
            session,
            complaint=complaint,
            events=built.case_events,
            day=filing.local_day(settings, now),
            prefix=settings.tracking_prefix,
            notification=built.notice,
            extra=built.extra,
            media=built.media,
            admitting=ticket.answered(201, _kept(built.filed)),
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
