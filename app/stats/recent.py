"""The class-case alert's 30-day counts, kept as a running total.

The alert (``ranking._cluster_alerts``) wants the largest item × township
groups received over the 30 local days ending on the report's last day.
Summing ``stats_daily`` for that grew with the data: 45k rows into 12.7k
groups at 1M cases, a quarter of the rankings request (bench/README.md).
``stats_recent_cluster`` holds the sums themselves for the window ending
today, indexed largest first, so the alert reads 20 rows.

How it stays equal to ``stats_daily``: only the projector (or a rebuild)
writes either table, under the projector's turn and in one transaction.
Each pass first checks the window's end day; when the local day has turned
it recounts the window from ``stats_daily`` (once a day, a month of rows).
Each batch then adds the receipt changes it applies to ``stats_daily`` for
days inside the window. A report that does not end today (or a replica that
has not seen today's recount) sums ``stats_daily`` as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import StatsDaily, StatsRecentCluster, StatsRecentWindow
from app.stats import rollup

WINDOW = "cluster"
DAYS = 30
ALL_UNITS = 0  # the unit_id of the rows that total every unit (unit ids start at 1)


def first_day(last_day: date) -> date:
    return last_day - timedelta(days=DAYS - 1)


def current(last_day: date | None = None) -> ColumnElement[bool]:
    """The window row, if it counts ``DAYS`` days (ending ``last_day``, if given)."""
    cond = and_(StatsRecentWindow.name == WINDOW, StatsRecentWindow.days == DAYS)
    return cond if last_day is None else and_(cond, StatsRecentWindow.last_day == last_day)


async def counted_through(session: AsyncSession) -> date | None:
    """The last day of the window the rows count, or None if never counted
    (or counted over another length than ``DAYS``, which a pass recounts)."""
    found = await session.execute(select(StatsRecentWindow.last_day).where(current()))
    return found.scalar_one_or_none()


async def recount(session: AsyncSession, last_day: date) -> None:
    """Count the window ending ``last_day`` afresh from ``stats_daily``.

    Callers hold the projector's turn (``projector.take_turn``), so nothing
    moves ``stats_daily`` meanwhile."""
    in_window = StatsDaily.day.between(first_day(last_day), last_day)
    total = func.sum(StatsDaily.received)
    per_unit = (
        select(StatsDaily.unit_id, StatsDaily.item_code, StatsDaily.township_code, total)
        .where(in_window)
        .group_by(StatsDaily.unit_id, StatsDaily.item_code, StatsDaily.township_code)
        .having(total != 0)
    )
    every_unit = (
        select(literal(ALL_UNITS), StatsDaily.item_code, StatsDaily.township_code, total)
        .where(in_window)
        .group_by(StatsDaily.item_code, StatsDaily.township_code)
        .having(total != 0)
    )
    await session.execute(delete(StatsRecentCluster))
    await session.execute(
        insert(StatsRecentCluster).from_select(
            ["unit_id", "item_code", "township_code", "received"], union_all(per_unit, every_unit)
        )
    )
    await session.execute(delete(StatsRecentWindow).where(StatsRecentWindow.name == WINDOW))
    await session.execute(
        insert(StatsRecentWindow).values(name=WINDOW, last_day=last_day, days=DAYS)
    )


async def keep_up(session: AsyncSession, today: date) -> date:
    """Move the window to end ``today`` if the day has turned (or the clock
    was set back); the projector calls this each pass, under its turn."""
    if await counted_through(session) != today:
        await recount(session, today)
    return today


async def recount_after_rebuild(session: AsyncSession) -> None:
    """A rebuild replaced ``stats_daily``: count the same window again."""
    last_day = await counted_through(session)
    if last_day is not None:
        await recount(session, last_day)


async def add(
    session: AsyncSession,
    last_day: date,
    rows: Iterable[tuple[Any, dict[str, Any], dict[str, int]]],
) -> int:
    """Add the receipt changes a projector batch makes to ``stats_daily``
    (``(model, keys, counts)`` per rollup row) that fall inside the window."""
    start = first_day(last_day)
    sums: dict[tuple[int, str, str], int] = defaultdict(int)
    for model, keys, counts in rows:
        received = counts.get("received", 0)
        if model is not StatsDaily or not received or not start <= keys["day"] <= last_day:
            continue
        item, town = keys["item_code"], keys["township_code"]
        sums[(keys["unit_id"], item, town)] += received
        sums[(ALL_UNITS, item, town)] += received
    return await rollup.upsert_many(
        session,
        StatsRecentCluster,
        (
            ({"unit_id": u, "item_code": i, "township_code": t}, {"received": n})
            for (u, i, t), n in sums.items()
        ),
    )
