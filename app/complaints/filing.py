"""Filing a case: one door for every channel.

Every new case, whichever door it came in by (a resident's filing, offline
intake, Open311, historical import), is built by ``build_case`` and written by
``write_case``: on PostgreSQL in one statement (``filing_sql.insert_case``:
the case, its events, media, notice, content check, idempotency answer and
gapless number), on SQLite through the ORM in the request's transaction.
A filing through the API is built in app/complaints/submission.py.
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
from app.complaints import events, filing_sql, identity, repository
from app.complaints.schemas import Location
from app.complaints.service import hash_query_code, thresholds
from app.core.config import Settings
from app.idempotency import service as idempotency
from app.media import service as media_service
from app.models import (
    Complaint,
    ComplaintEvent,
    Item,
    Media,
    Notification,
    Region,
    TaxonomyVersion,
)
from app.models.enums import Channel, ComplaintStatus, RegionLevel
from app.routing import refcache
from app.routing.engine import RouteDecision
from app.stats import rollup


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
    # Where the statistics will count it open (stats_open_due), written with
    # the case: the projector counts it there when it applies the filing and
    # need not rewrite the row (app/stats/projector.py).
    open_unit_id, open_due_day = rollup.open_place(decision.unit.id, decision.due_at)
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
        open_unit_id=open_unit_id,
        open_due_day=open_due_day,
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


async def pin_taxonomy(
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


def _persisted(session: AsyncSession, complaint: Complaint) -> None:
    """A case written by a prebuilt statement, made a persistent object of
    ``session`` holding every column as written (defaults included), so it
    reads without a lazy load and later changes become UPDATEs."""
    for key, value in filing_sql.row_values(complaint).items():
        if key not in complaint.__dict__:
            setattr(complaint, key, value)
    make_transient_to_detached(complaint)
    session.add(complaint)


# The ORM's flush instead (tests compare the two).
SQLITE_ROWS_ON_DRIVER = True


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
    await pin_taxonomy(session, settings, taxonomy_version_id, now)
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
        _persisted(session, complaint)
        return
    # The ORM's way serves SQLite, whose writer took the whole database's
    # lock at its BEGIN (IMMEDIATE): holding the day's counter from the start
    # costs no one anything there, so the number is drawn first and the case
    # and its notice go in with it, instead of an UPDATE of each afterwards.
    # (PostgreSQL's statement takes the counter last: filing_sql.)
    seq = await repository.next_counter(session, day)
    complaint.tracking_no = f"{settings.tracking_prefix}{day:%Y%m%d}-{seq:06d}"
    if notice is not None:
        notice.body = notice.body.replace(filing_sql.NUMBER, complaint.tracking_no)
        notice.data = {**(notice.data or {}), "tracking_no": complaint.tracking_no}
    rows: list[Any] = [complaint, *case_events, *extra]
    if notice is not None:
        rows.append(notice)
    if SQLITE_ROWS_ON_DRIVER and session.get_bind().dialect.driver == "aiosqlite":
        # Prebuilt INSERTs, one hop each (filing_sql.insert_rows); the media's
        # attachment is the ORM's to flush, as before.
        await filing_sql.insert_rows(session, rows)
        _persisted(session, complaint)
    else:
        session.add_all(rows)
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
