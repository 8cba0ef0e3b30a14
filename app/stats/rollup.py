"""Rollups from events: one pure mapping, applied live and by the rebuild.

``increments_for(event, unit_id)`` says what an event adds to which metric.
The request that writes an event applies it in the same transaction; ``ydt
stats rebuild`` replays the whole event log through the same function, so the
two can only differ if a write bypassed the event log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Complaint,
    ComplaintEvent,
    StatsDaily,
    StatsItemMonth,
    StatsOpenDue,
    StatsTownDay,
    StatsUnitMonth,
)
from app.models.enums import ComplaintStatus
from app.models.stats import METRICS

DONE = (ComplaintStatus.closed, ComplaintStatus.rejected)

TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Key:
    day: date
    unit_id: int
    item_code: str
    township_code: str
    county_code: str


def _day(value: datetime | str) -> date:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(TZ).date()


def local_date(at: datetime) -> date:
    """The local calendar day of a moment: rollups and "overdue" count in it."""
    return _day(at)


def increments_for(event: ComplaintEvent, unit_id: int) -> tuple[int, date, dict[str, int]] | None:
    """(unit, day, {metric: delta}) for one event, or None if it counts nothing."""
    d = event.data or {}
    kind = event.kind
    if kind == "filed":
        return (
            int(d.get("unit_id", unit_id)),
            _day(d.get("received_at", event.created_at)),
            {"received": 1},
        )
    if kind == "accepted":
        return unit_id, _day(event.created_at), {"accepted": 1}
    if kind == "closed":
        deltas = {"closed": 1, "handling_days_sum": int(d.get("handling_days", 0))}
        if d.get("on_time"):
            deltas["closed_on_time"] = 1
        return unit_id, _day(event.created_at), deltas
    if kind == "reopened":
        return unit_id, _day(event.created_at), {"reopened": 1}
    if kind == "rated":
        verdict = str(d.get("satisfaction"))
        deltas = {"rated": 1, verdict: 1, "score_sum": int(d.get("score", 0))}
        if verdict == "unsatisfied":
            deltas["unsolved"] = 1
        return unit_id, _day(event.created_at), deltas
    if kind == "callback":
        deltas = {}
        if d.get("fake_closure"):
            deltas["fake_closures"] = 1
        if d.get("fake_closure") or d.get("resolved") is False:
            deltas["unsolved"] = 1
        return (unit_id, _day(event.created_at), deltas) if deltas else None
    return None


def unit_after(event: ComplaintEvent, unit_id: int) -> int:
    """The responsible unit once this event has happened (routing, escalation)."""
    d = event.data or {}
    if event.kind in ("routed", "filed") and "unit_id" in d:
        return int(d["unit_id"])
    if event.kind == "escalated" and "to_unit_id" in d:
        return int(d["to_unit_id"])
    return unit_id


def coarse_keys(key: Key) -> list[tuple[Any, dict[str, Any]]]:
    """The row of each rollup table that one fine key contributes to."""
    month = key.day.replace(day=1)
    return [
        (
            StatsDaily,
            {
                "day": key.day,
                "unit_id": key.unit_id,
                "item_code": key.item_code,
                "township_code": key.township_code,
                "county_code": key.county_code,
            },
        ),
        (
            StatsTownDay,
            {"day": key.day, "township_code": key.township_code, "county_code": key.county_code},
        ),
        (StatsUnitMonth, {"month": month, "unit_id": key.unit_id, "county_code": key.county_code}),
        (
            StatsItemMonth,
            {"month": month, "item_code": key.item_code, "county_code": key.county_code},
        ),
    ]


def _insert(session: AsyncSession, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


async def _upsert(
    session: AsyncSession, model: Any, keys: dict[str, Any], deltas: dict[str, int]
) -> None:
    """One statement: insert the row or add to it (ON CONFLICT on its primary key).

    A single upsert instead of UPDATE, SAVEPOINT, INSERT, RELEASE: fewer round
    trips while the row is locked, and no race between the two (bench/).
    Counters not in ``deltas`` start from their column default (0)."""
    table: Any = model.__table__
    stmt = (
        _insert(session, model)
        .values(**keys, **deltas)
        .on_conflict_do_update(
            index_elements=[c.name for c in table.primary_key.columns],
            set_={m: table.c[m] + v for m, v in deltas.items()},
        )
    )
    await session.execute(stmt)


async def _add(session: AsyncSession, key: Key, deltas: dict[str, int]) -> None:
    for model, keys in coarse_keys(key):
        await _upsert(session, model, keys, deltas)


async def apply(session: AsyncSession, complaint: Complaint, event: ComplaintEvent) -> None:
    """Called with every event written; uses the complaint's current unit."""
    await sync_open_due(session, complaint)
    found = increments_for(event, complaint.unit_id)
    if found is None:
        return
    unit_id, day, deltas = found
    await _add(
        session,
        Key(day, unit_id, complaint.item_code, complaint.township_code, complaint.county_code),
        deltas,
    )


SETTLED_DAY = date(2000, 1, 1)


def open_key(complaint: Complaint) -> tuple[int, date] | None:
    """Where an open case belongs in stats_open_due: its unit and local due day.

    Due moments are the end of a working day, so "due before now" is exactly
    "due day before today" in local time.
    """
    if not complaint.status.is_open:
        return None
    return complaint.unit_id, _day(complaint.due_at)


async def _bump_open(
    session: AsyncSession, complaint: Complaint, unit_id: int, due_day: date, delta: int
) -> None:
    keys = {
        "due_day": due_day,
        "unit_id": unit_id,
        "item_code": complaint.item_code,
        "township_code": complaint.township_code,
        "county_code": complaint.county_code,
    }
    await _upsert(session, StatsOpenDue, keys, {"open": delta})


async def sync_open_due(session: AsyncSession, complaint: Complaint) -> None:
    """Move the case in stats_open_due if its open state, unit or due day changed.

    It compares where the case should be counted with where it was counted
    (stored on the case), so every path that changes status, unit or deadline
    is covered without each one knowing about statistics.
    """
    wanted = open_key(complaint)
    counted = (
        (complaint.open_unit_id, complaint.open_due_day)
        if complaint.open_due_day is not None and complaint.open_unit_id is not None
        else None
    )
    if wanted == counted:
        return
    if counted is not None:
        await _bump_open(session, complaint, counted[0], counted[1], -1)
    if wanted is not None:
        await _bump_open(session, complaint, wanted[0], wanted[1], 1)
    complaint.open_unit_id, complaint.open_due_day = wanted if wanted else (None, None)


async def compact_open_due(session: AsyncSession, today: date, *, min_rows: int = 1) -> int:
    """Fold rows due before yesterday into one row per key dated SETTLED_DAY.

    Only the sum over past days is ever read, so folding keeps every answer
    and bounds the rows an overview reads. The worker folds once at least
    ``min_rows`` rows wait, so closures of overdue cases do not trigger a fold
    each. Returns the rows folded.
    """
    cutoff = today - timedelta(days=1)
    if await _unsettled(session, cutoff, min_rows) < min_rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        # Writers bump rows of old due days; none may land between the sums
        # read here and the delete below. SQLite transactions are serial already.
        await session.execute(text("LOCK TABLE stats_open_due IN SHARE ROW EXCLUSIVE MODE"))
        if await _unsettled(session, cutoff, min_rows) < min_rows:
            return 0
    rows = (
        await session.execute(
            select(
                StatsOpenDue.unit_id,
                StatsOpenDue.item_code,
                StatsOpenDue.township_code,
                StatsOpenDue.county_code,
                func.sum(StatsOpenDue.open),
                func.count(),
            )
            .where(StatsOpenDue.due_day < cutoff)
            .group_by(
                StatsOpenDue.unit_id,
                StatsOpenDue.item_code,
                StatsOpenDue.township_code,
                StatsOpenDue.county_code,
            )
        )
    ).all()
    folded = sum(int(r[5]) for r in rows)
    await session.execute(delete(StatsOpenDue).where(StatsOpenDue.due_day < cutoff))
    session.add_all(
        StatsOpenDue(
            due_day=SETTLED_DAY,
            unit_id=r[0],
            item_code=r[1],
            township_code=r[2],
            county_code=r[3],
            open=int(r[4]),
        )
        for r in rows
        if int(r[4]) != 0
    )
    await session.flush()
    return folded


async def _unsettled(session: AsyncSession, cutoff: date, up_to: int) -> int:
    """How many rows wait to be folded, counting no further than ``up_to``."""
    waiting = (
        select(StatsOpenDue.due_day)
        .where(StatsOpenDue.due_day < cutoff, StatsOpenDue.due_day != SETTLED_DAY)
        .limit(up_to)
        .subquery()
    )
    return int((await session.execute(select(func.count()).select_from(waiting))).scalar_one())


async def rebuild_open_due(session: AsyncSession, *, batch: int = 5000) -> int:
    """Recount stats_open_due from the cases, and where each case is counted.

    Open cases are a present state, not history: the complaints table is its
    source of truth, and the incremental rows must sum to this.
    """
    await session.execute(delete(StatsOpenDue))
    await session.execute(
        update(Complaint)
        .where(Complaint.open_due_day.is_not(None))
        .values(open_unit_id=None, open_due_day=None)
        .execution_options(synchronize_session=False)
    )
    counts: dict[tuple[date, int, str, str, str], int] = defaultdict(int)
    marks: list[dict[str, Any]] = []
    last_id = ""
    while True:
        cases = (
            await session.execute(
                select(
                    Complaint.id,
                    Complaint.status,
                    Complaint.unit_id,
                    Complaint.due_at,
                    Complaint.item_code,
                    Complaint.township_code,
                    Complaint.county_code,
                )
                .where(Complaint.id > last_id, Complaint.status.not_in(DONE))
                .order_by(Complaint.id)
                .limit(batch)
            )
        ).all()
        if not cases:
            break
        for c in cases:
            day = _day(c.due_at)
            counts[(day, c.unit_id, c.item_code, c.township_code, c.county_code)] += 1
            marks.append({"id": c.id, "open_unit_id": c.unit_id, "open_due_day": day})
        last_id = cases[-1].id
    for i in range(0, len(marks), batch):
        await session.execute(update(Complaint), marks[i : i + batch])
    session.add_all(
        StatsOpenDue(
            due_day=k[0], unit_id=k[1], item_code=k[2], township_code=k[3], county_code=k[4], open=n
        )
        for k, n in counts.items()
    )
    await session.flush()
    return len(marks)


ROLLUP_TABLES = (StatsDaily, StatsTownDay, StatsUnitMonth, StatsItemMonth)


async def rebuild(session: AsyncSession, *, batch: int = 2000) -> int:
    """Recompute every rollup from the event log (run in one transaction)."""
    for table in ROLLUP_TABLES:
        await session.execute(delete(table))
    totals: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    last_id = ""
    replayed = 0
    while True:
        cases = (
            await session.execute(
                select(
                    Complaint.id,
                    Complaint.unit_id,
                    Complaint.item_code,
                    Complaint.township_code,
                    Complaint.county_code,
                )
                .where(Complaint.id > last_id)
                .order_by(Complaint.id)
                .limit(batch)
            )
        ).all()
        if not cases:
            break
        info = {c.id: c for c in cases}
        events: Iterable[ComplaintEvent] = (
            await session.execute(
                select(ComplaintEvent)
                .where(ComplaintEvent.complaint_id.in_(list(info)))
                .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
            )
        ).scalars()
        unit: dict[str, int] = {}
        for e in events:
            c = info[e.complaint_id]
            current = unit.get(e.complaint_id, c.unit_id)
            found = increments_for(e, current)
            unit[e.complaint_id] = unit_after(e, current)
            replayed += 1
            if found is None:
                continue
            unit_id, day, deltas = found
            bucket = totals[Key(day, unit_id, c.item_code, c.township_code, c.county_code)]
            for m, v in deltas.items():
                bucket[m] += v
        last_id = cases[-1].id
    rows: dict[tuple[Any, tuple[tuple[str, Any], ...]], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(METRICS, 0)
    )
    for fine_key, counts in totals.items():
        for model, keys in coarse_keys(fine_key):
            bucket = rows[(model, tuple(keys.items()))]
            for m, n in counts.items():
                bucket[m] += n
    session.add_all(model(**dict(keys), **counts) for (model, keys), counts in rows.items())
    await session.flush()
    await rebuild_open_due(session)
    return replayed
