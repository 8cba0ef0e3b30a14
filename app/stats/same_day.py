"""两个当天 (seed 002): a real-name report gets feedback the same day it is
accepted and the same day it is closed. This measures whether it held: of the
real-name online cases accepted (closed) in the period, how many had their
acceptance (closure) notice delivered to the resident on that same local day.

Only online filings count: they are the ones with a WeChat to notify (a
resident who came by letter hears by phone or on paper, which the system does
not see). Anonymous filings are not real-name; historical cases were closed
before the system existed. Read from the cases and the outbox, not the
rollups: a notice's delivery is not an event of the case.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.models import Complaint, Notification
from app.models.enums import Channel
from app.stats import rollup
from app.stats.schemas import SameDayFeedback


def _within(
    column: InstrumentedAttribute[datetime | None], start: date | None, end: date | None
) -> list[ColumnElement[bool]]:
    """Local days [start, end] as a UTC range on ``column`` (both ends optional)."""
    out: list[ColumnElement[bool]] = [column.is_not(None)]
    if start is not None:
        out.append(column >= datetime.combine(start, datetime.min.time(), tzinfo=rollup.TZ))
    if end is not None:
        out.append(
            column
            < datetime.combine(
                date.fromordinal(end.toordinal() + 1), datetime.min.time(), tzinfo=rollup.TZ
            )
        )
    return out


def local_day(session: AsyncSession, column: Any) -> Any:
    """The local calendar day of a UTC moment, computed by the database.

    PostgreSQL converts in the named zone; SQLite stores naive UTC text and
    adds the zone's offset, which for Asia/Shanghai is a constant +8 hours
    (no daylight saving since 1991)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(str(rollup.TZ), column), Date)
    offset = rollup.TZ.utcoffset(datetime(2026, 1, 1))
    assert offset is not None
    return func.date(column, f"+{int(offset.total_seconds() // 3600)} hours")


async def _share(
    session: AsyncSession,
    *,
    kind: str,
    moment: InstrumentedAttribute[datetime | None],
    scope: list[ColumnElement[bool]],
    date_from: date | None,
    date_to: date | None,
) -> tuple[int, int]:
    """(cases whose ``moment`` falls in the period, of them notified that day).

    Counted in SQL: each case joins at most one (case, local day) of its sent
    notices of this kind, so ``count(*)`` counts cases and the joined count
    those told the same day. Pulling a row per case into Python made the
    overview grow with every case ever accepted (bench/README.md)."""
    sent = (
        select(
            Notification.complaint_id.label("cid"),
            local_day(session, Notification.sent_at).label("day"),
        )
        .where(
            Notification.kind == kind,
            Notification.status == "sent",
            Notification.sent_at.is_not(None),
        )
        .distinct()
        .subquery()
    )
    stmt = (
        select(func.count(), func.count(sent.c.cid))
        .select_from(Complaint)
        .outerjoin(
            sent,
            and_(sent.c.cid == Complaint.id, sent.c.day == local_day(session, moment)),
        )
        .where(*scope, *_within(moment, date_from, date_to))
    )
    total, told = (await session.execute(stmt)).one()
    return int(total), int(told)


async def same_day_feedback(
    session: AsyncSession,
    *,
    prefix: str,
    unit_id: int | None,
    date_from: date | None,
    date_to: date | None,
) -> SameDayFeedback:
    scope: list[ColumnElement[bool]] = [
        Complaint.channel == Channel.online,
        Complaint.anonymous.is_(False),
        Complaint.historical.is_(False),
        Complaint.region_code.startswith(prefix),
    ]
    if unit_id is not None:
        scope.append(Complaint.unit_id == unit_id)
    accepted, accepted_ok = await _share(
        session,
        kind="accepted",
        moment=Complaint.accepted_at,
        scope=scope,
        date_from=date_from,
        date_to=date_to,
    )
    closed, closed_ok = await _share(
        session,
        kind="closed",
        moment=Complaint.closed_at,
        scope=scope,
        date_from=date_from,
        date_to=date_to,
    )
    total = accepted + closed
    return SameDayFeedback(
        accepted=accepted,
        accepted_same_day=accepted_ok,
        closed=closed,
        closed_same_day=closed_ok,
        rate=round((accepted_ok + closed_ok) / total, 4) if total else None,
    )
