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

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, select
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


async def _share(
    session: AsyncSession,
    *,
    kind: str,
    moment: InstrumentedAttribute[datetime | None],
    scope: list[ColumnElement[bool]],
    date_from: date | None,
    date_to: date | None,
) -> tuple[int, int]:
    """(cases whose ``moment`` falls in the period, of them notified that day)."""
    stmt = (
        select(Complaint.id, moment, Notification.sent_at)
        .outerjoin(
            Notification,
            and_(
                Notification.complaint_id == Complaint.id,
                Notification.kind == kind,
                Notification.status == "sent",
            ),
        )
        .where(*scope, *_within(moment, date_from, date_to))
    )
    days: dict[str, date] = {}
    sent: dict[str, set[date]] = defaultdict(set)
    for cid, at, sent_at in await session.execute(stmt):
        if at is None:  # excluded by the WHERE; for the type checker
            continue
        days[cid] = rollup.local_date(at)
        if sent_at is not None:
            sent[cid].add(rollup.local_date(sent_at))
    return len(days), sum(1 for cid, day in days.items() if day in sent[cid])


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
