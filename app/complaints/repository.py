from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.complaints import identity
from app.core import driver
from app.core.db import UTCDateTime
from app.models import (
    Citizen,
    Complaint,
    ComplaintEvent,
    Item,
    Media,
    Region,
    SupervisionUnit,
    TrackingCounter,
)
from app.models.enums import ComplaintStatus
from app.models.session import SessionSubject

OPEN_STATUSES = [s for s in ComplaintStatus if s.is_open]


# Built once: on SQLite it runs on the driver in one hop (driver.in_transaction).
_NEXT_COUNTER = (
    update(TrackingCounter)
    .where(TrackingCounter.day == bindparam("on_day", type_=Date))
    .values(value=TrackingCounter.value + 1)
    .returning(TrackingCounter.value)
)


async def next_counter(session: AsyncSession, day: date) -> int:
    """Gapless per-day sequence; the row lock is held only until commit."""
    found = await driver.in_transaction(session, _NEXT_COUNTER, {"on_day": day})
    if found:
        return int(found[0][0])
    try:
        async with session.begin_nested():
            session.add(TrackingCounter(day=day, value=1))
        return 1
    except IntegrityError:  # another filing created today's row first
        found = await driver.in_transaction(session, _NEXT_COUNTER, {"on_day": day})
        return int(found[0][0])


async def open_cases_by_cadre(session: AsyncSession, staff_ids: Sequence[int]) -> Mapping[int, int]:
    if not staff_ids:
        return {}
    stmt = (
        select(Complaint.cadre_id, func.count())
        .where(Complaint.cadre_id.in_(staff_ids), Complaint.status.in_(OPEN_STATUSES))
        .group_by(Complaint.cadre_id)
    )
    return {int(cid): int(n) for cid, n in (await session.execute(stmt)).all() if cid is not None}


async def attached_media(session: AsyncSession, complaint_id: str) -> Sequence[Media]:
    stmt = (
        select(Media)
        .where(Media.attached_to == f"complaint:{complaint_id}")
        .order_by(Media.attached_at, Media.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def public_events(session: AsyncSession, complaint_id: str) -> Sequence[ComplaintEvent]:
    stmt = (
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == complaint_id, ComplaintEvent.public.is_(True))
        .order_by(ComplaintEvent.seq)
    )
    return (await session.execute(stmt)).scalars().all()


SummaryRow = Row[Complaint, str, str, str]


def _summary_select() -> Select[Complaint, str, str, str]:
    return (
        select(Complaint, Item.name, Region.name, SupervisionUnit.name)
        .join(Item, Item.id == Complaint.item_id)
        .join(Region, Region.code == Complaint.region_code)
        .join(SupervisionUnit, SupervisionUnit.id == Complaint.unit_id)
    )


async def mine(
    session: AsyncSession, citizen_id: int, *, limit: int, offset: int
) -> Sequence[SummaryRow]:
    stmt = (
        _summary_select()
        .where(identity.owned_condition(citizen_id))
        .order_by(Complaint.created_at.desc(), Complaint.id)
        .limit(limit)
        .offset(offset)
    )
    return (await session.execute(stmt)).all()


async def summary(session: AsyncSession, complaint_id: str) -> SummaryRow | None:
    stmt = _summary_select().where(Complaint.id == complaint_id)
    return (await session.execute(stmt)).one_or_none()


async def tracking_no_of(session: AsyncSession, complaint_id: str) -> str | None:
    stmt = select(Complaint.tracking_no).where(Complaint.id == complaint_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_tracking_no(session: AsyncSession, tracking_no: str) -> Complaint | None:
    stmt = select(Complaint).where(Complaint.tracking_no == tracking_no)
    return (await session.execute(stmt)).scalar_one_or_none()


# The resident's view of a case in one statement: the case, its public events
# and its media ids aggregated as JSON, correlated on the outer ``complaints``
# row (the names it shows come from the reference cache: three joins were a
# fifth of the statement's time). Only what the timeline shows leaves the
# database: an event's public reply, not its whole ``data`` (the filing
# event's carries the row's snapshot).
_EVENTS_SQL = {
    # The rows ordered in a subquery, then folded: PostgreSQL 15 sorts an
    # aggregate's own ORDER BY input apart from the index order it already
    # has (a sixth of the statement's time, measured with pgbench).
    "postgresql": (
        "(SELECT json_agg(json_build_array(e.kind, e.created_at, e.to_status, e.note, "
        "e.has_reply, e.reply)) FROM (SELECT kind, created_at, to_status, note, "
        "(data -> 'public_reply') IS NOT NULL AS has_reply, data ->> 'public_reply' AS reply "
        "FROM complaint_events WHERE complaint_id = complaints.id AND public ORDER BY seq) e)"
    ),
    # SQLite before 3.44 has no ORDER BY inside an aggregate: it folds the
    # rows of an ordered subquery in their order.
    "sqlite": (
        "(SELECT json_group_array(json_array(e.kind, e.created_at, e.to_status, e.note, "
        "json_type(e.data, '$.public_reply') IS NOT NULL, json_extract(e.data, '$.public_reply'))) "
        "FROM (SELECT * FROM complaint_events WHERE complaint_id = complaints.id AND public = 1 "
        "ORDER BY seq) e)"
    ),
}
_MEDIA_SQL = {
    "postgresql": (
        "(SELECT json_agg(m.id) FROM (SELECT id FROM media "
        "WHERE attached_to = 'complaint:' || complaints.id ORDER BY attached_at, id) m)"
    ),
    "sqlite": (
        "(SELECT json_group_array(m.id) FROM (SELECT id FROM media "
        "WHERE attached_to = 'complaint:' || complaints.id ORDER BY attached_at, id) m)"
    ),
}


@dataclass(frozen=True, slots=True)
class CaseView:
    """What the resident's view reads of a case, as the one-statement reads
    return it: not the routing trace, the priority flags or the card moments
    (JSON and columns a read would decode for nothing). A plain record, not a
    transient ``Complaint``: building an instrumented ORM instance was a sixth
    of a tracking read's CPU (bench/README.md). The view is assembled by the
    same code as the ORM read (``service._detail``), which takes either."""

    id: str
    tracking_no: str
    status: ComplaintStatus
    item_id: int
    item_code: str
    region_code: str
    unit_id: int
    created_at: datetime
    due_at: datetime
    accept_due_at: datetime
    content: str
    anonymous: bool
    disclosure_id: int | None
    disclosure_row: int | None
    citizen_id: int | None
    owner_index: str | None
    contact_name: str | None
    contact_phone: str | None
    reporter_name: str | None
    identity_sealed: str | None
    query_code_hash: str | None


# CaseView's fields are the table's columns of the same names, in this order.
_DETAIL_COLUMNS = tuple(f.name for f in fields(CaseView))

# A case as the resident's view reads it: the ORM row or the one-statement read's record.
Case = Complaint | CaseView
# The case, its public events and its media ids (JSON). The names it shows
# (item, village, unit) come from the reference cache (``service._names``).
DetailRow = tuple[CaseView, Any, Any]

# Built once per dialect and kind, with bind parameters for every value, and
# run on the driver connection where it may (app/core/driver.py): SQLAlchemy's
# execution layer cost as much as the rest of the read.
_DETAIL: dict[tuple[str, str], Select[Any]] = {}


def _detail_stmt(dialect: str, kind: str) -> Select[Any]:
    found = _DETAIL.get((dialect, kind))
    if found is not None:
        return found
    table = Complaint.__table__
    stmt: Any = (
        select(
            *(table.c[name] for name in _DETAIL_COLUMNS),
            literal_column(_EVENTS_SQL[dialect]).label("events"),
            literal_column(_MEDIA_SQL[dialect]).label("media"),
        )
    ).select_from(table)
    if kind == "owned":
        owner = bindparam("owner_id", type_=Integer)
        live: Any = sessions.live(
            bindparam("sid", type_=String),  # type: ignore[arg-type]
            SessionSubject.citizen,
            Citizen.id,
            bindparam("now", type_=UTCDateTime()),  # type: ignore[arg-type]
        )
        stmt = stmt.where(
            Complaint.id == bindparam("cid", type_=String),
            or_(
                Complaint.citizen_id == owner,
                Complaint.owner_index == bindparam("owner_index", type_=String),
            ),
            exists().where(Citizen.id == owner, live),
        )
    else:
        stmt = stmt.where(Complaint.tracking_no == bindparam("tracking_no", type_=String))
    built: Select[Any] = stmt
    _DETAIL[(dialect, kind)] = built
    return built


def _dialect(session: AsyncSession) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


def _detail_row(found: tuple[Any, ...] | None) -> DetailRow | None:
    if found is None:
        return None
    n = len(_DETAIL_COLUMNS)
    events, media = found[n:]
    return CaseView(*found[:n]), events, media


async def names(
    session: AsyncSession, item_id: int, region_code: str, unit_id: int
) -> tuple[str, str, str] | None:
    """The names a case shows, read from their tables: for a case whose item,
    village or unit the reference cache does not hold (yet)."""
    stmt = select(
        select(Item.name).where(Item.id == item_id).scalar_subquery(),
        select(Region.name).where(Region.code == region_code).scalar_subquery(),
        select(SupervisionUnit.name).where(SupervisionUnit.id == unit_id).scalar_subquery(),
    )
    found = (await session.execute(stmt)).one()
    if any(name is None for name in found):
        return None
    return str(found[0]), str(found[1]), str(found[2])


async def owned_detail_row(
    session: AsyncSession, *, complaint_id: str, owner: int, session_id: str, now: datetime
) -> DetailRow | None:
    """One SELECT for ``GET /complaints/{id}``: the case only if ``owner`` filed
    it (either way the row keeps it) and the caller's session is live, so
    another resident's case is simply not found and the token costs no
    separate query."""
    params = {
        "cid": complaint_id,
        "owner_id": owner,
        "owner_index": identity.owner_index(owner),
        "sid": session_id,
        "now": now,
    }
    return _detail_row(
        await driver.first(session, _detail_stmt(_dialect(session), "owned"), params)
    )


async def tracked_detail_row(session: AsyncSession, tracking_no: str) -> DetailRow | None:
    """One SELECT for ``/track/{no}`` (the query code is checked by the caller)."""
    stmt = _detail_stmt(_dialect(session), "tracked")
    return _detail_row(await driver.first(session, stmt, {"tracking_no": tracking_no}))
