"""Rollups from events: one pure fold, applied live and by the rebuild.

Each case is counted once, on the local day it was received, for the unit
responsible for it now, with flags that describe its present state: accepted,
closed (and on time), its latest rating, reopened at least once, unsolved,
found faked at a callback. ``fold`` replays a case's events into a ``Tally``;
``contribution`` turns a tally into the counters it adds to its rollup rows.

The projector (``app/stats/projector.py``), shortly after the request that
wrote an event, moves the case's contribution from what the events before it
said to what they say now; ``ydt stats rebuild`` folds every case's whole log
and adds the final contributions. Once the projector has drained, the live
rows are therefore sums of final contributions too, so the two agree unless a
write bypassed the event log.

Why this shape: a rate is only bounded if its numerator counts a subset of the
cases its denominator counts, in the same rows. Counting events instead (each
closing, each reopening, each rating, each on its own day) let a case count
twice in a period and a numerator land in a month its denominator did not,
which is how ``reopen_rate`` 1.5 and ``solved_rate`` 0 were seen for a case
that ended satisfied after one reopening.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Complaint,
    ComplaintEvent,
    StatsCityItemMonth,
    StatsDaily,
    StatsItemMonth,
    StatsOpenDue,
    StatsPending,
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


class EventLike(Protocol):
    """What the fold reads of an event (the model, or a bench's stand-in)."""

    kind: str
    data: Any
    created_at: datetime


# Event kinds that change a tally; every other kind leaves the rollups alone.
COUNTED = frozenset(
    {
        "filed",
        "routed",
        "escalated",
        "accepted",
        "resolved",
        "closed",
        "reopened",
        "rated",
        "callback",
        "merged",
        "unmerged",
        "reclassified",
    }
)


@dataclass(frozen=True, slots=True)
class Tally:
    """One case's present state, as far as the statistics care."""

    received_day: date | None = None
    unit_id: int | None = None
    accepted: bool = False
    closed: bool = False
    on_time: bool = False
    handling_days: int = 0
    verdict: str | None = None  # the latest rating, whatever its round
    score: int = 0
    round_verdict: str | None = None  # the rating of the current handling round
    callback_unsolved: bool = False  # a callback on the current closure found it unsolved
    reopened: bool = False
    fake_closure: bool = False
    merged: bool = False  # closed as a duplicate of another case: counted there, not here
    historical: bool = False  # imported after the fact: timeliness not counted


def step(t: Tally, event: EventLike) -> Tally:
    """The tally after one more event."""
    d: Mapping[str, Any] = event.data or {}
    kind = event.kind
    if kind == "filed":
        return replace(
            t,
            received_day=_day(d.get("received_at", event.created_at)),
            unit_id=int(d["unit_id"]) if "unit_id" in d else t.unit_id,
            historical=bool(d.get("historical")),
        )
    if kind in ("routed", "reclassified") and "unit_id" in d:
        return replace(t, unit_id=int(d["unit_id"]))
    if kind == "escalated" and "to_unit_id" in d:
        return replace(t, unit_id=int(d["to_unit_id"]))
    if kind in ("accepted", "resolved"):
        return replace(t, accepted=True)
    if kind == "closed":
        return replace(
            t,
            accepted=True,
            closed=True,
            on_time=bool(d.get("on_time")),
            handling_days=int(d.get("handling_days", 0)),
        )
    if kind == "reopened":
        # A new handling round: the closure, its verdict and callback are history.
        return replace(
            t,
            accepted=True,
            reopened=True,
            closed=False,
            on_time=False,
            handling_days=0,
            round_verdict=None,
            callback_unsolved=False,
        )
    if kind == "rated":
        verdict = str(d.get("satisfaction"))
        return replace(t, verdict=verdict, round_verdict=verdict, score=int(d.get("score", 0)))
    if kind in ("merged", "unmerged"):
        return replace(t, merged=kind == "merged")
    if kind == "callback":
        fake = bool(d.get("fake_closure"))
        unsolved = t.closed and (fake or d.get("resolved") is False)
        return replace(
            t,
            fake_closure=t.fake_closure or fake,
            callback_unsolved=t.callback_unsolved or unsolved,
        )
    return t


def fold(events: Iterable[EventLike], start: Tally | None = None) -> Tally:
    t = start or Tally()
    for e in events:
        t = step(t, e)
    return t


def contribution(t: Tally) -> tuple[int, date, dict[str, int]] | None:
    """(unit, receipt day, counters) a case in this state adds; None before filing.

    Every numerator is a subset of its denominator, case by case: on time and
    unsolved only while closed; reopened only once accepted; satisfied, basic
    and unsatisfied split the rated.
    """
    if t.received_day is None or t.unit_id is None or t.merged:
        return None
    m = dict.fromkeys(METRICS, 0)
    m["received"] = 1
    m["accepted"] = int(t.accepted)
    m["reopened"] = int(t.reopened and t.accepted)
    m["fake_closures"] = int(t.fake_closure)
    if t.closed:
        m["closed"] = 1
        if t.historical:
            m["closed_untimed"] = 1
        else:
            m["closed_on_time"] = int(t.on_time)
            m["handling_days_sum"] = t.handling_days
        m["unsolved"] = int(t.round_verdict == "unsatisfied" or t.callback_unsolved)
    if t.verdict in ("satisfied", "basic", "unsatisfied"):
        m["rated"] = 1
        m[t.verdict] = 1
        m["score_sum"] = t.score
    return t.unit_id, t.received_day, {k: v for k, v in m.items() if v}


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
        (StatsCityItemMonth, {"month": month, "item_code": key.item_code}),
    ]


UPSERT_CHUNK = 1000  # parameter sets per executemany

# Built once per (dialect, table, counters): a fresh insert per call rebuilt
# its ``excluded`` alias and cache key, a tenth of the worker's samples.
_UPSERTS: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def _upsert(dialect: str, table: Any, counters: tuple[str, ...]) -> Any:
    key = (dialect, table.name, counters)
    found = _UPSERTS.get(key)
    if found is None:
        stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
        pk = [c.name for c in table.primary_key.columns]
        found = _UPSERTS[key] = stmt.on_conflict_do_update(
            index_elements=pk, set_={m: table.c[m] + stmt.excluded[m] for m in counters}
        )
    return found


async def upsert_many(
    session: AsyncSession, model: Any, rows: Iterable[tuple[dict[str, Any], dict[str, int]]]
) -> int:
    """Insert each row or add its counters to it (ON CONFLICT on the primary
    key): one prepared statement, executed for every row in key order
    (pipelined by the driver). One upsert per row rather than UPDATE, then
    INSERT if missing: fewer round trips while a row is locked, and no race
    between the two.

    The projector's batch touches a row per table for each case; building and
    running a statement per row made a worker applying small batches pay for
    each (bench/README.md). Every row carries every counter named in any row
    (0 where it has none), so one statement fits them all. Returns the rows."""
    table: Any = model.__table__
    keyed = sorted(
        ((keys, deltas) for keys, deltas in rows if any(deltas.values())),
        key=lambda kv: tuple(kv[0].values()),
    )
    if not keyed:
        return 0
    counters = sorted({m for _, deltas in keyed for m, v in deltas.items() if v})
    values = [{**keys, **{m: deltas.get(m, 0) for m in counters}} for keys, deltas in keyed]
    # The table, not the mapped class: a Core statement with a list of
    # parameter sets is one prepared statement run for each (executemany),
    # compiled once per shape; the ORM's bulk path compiled every row.
    stmt = _upsert(session.get_bind().dialect.name, table, tuple(counters))
    for i in range(0, len(values), UPSERT_CHUNK):
        await session.execute(stmt, values[i : i + UPSERT_CHUNK])
    return len(values)


SETTLED_DAY = date(2000, 1, 1)


def open_place(unit_id: int, due_at: datetime) -> tuple[int, date]:
    """Where an open case belongs in stats_open_due: its unit and local due day.

    Due moments are the end of a working day, so "due before now" is exactly
    "due day before today" in local time.
    """
    return unit_id, _day(due_at)


def open_key(complaint: Complaint) -> tuple[int, date] | None:
    """``open_place`` of a case, or None once it is no longer open."""
    if not complaint.status.is_open:
        return None
    return open_place(complaint.unit_id, complaint.due_at)


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


def _filing_pending() -> Any:
    """The case's filed event still waits for the projector (same snapshot
    as the case row: both are written by the filing's one transaction)."""
    return (
        select(StatsPending.event_id)
        .join(ComplaintEvent, ComplaintEvent.id == StatsPending.event_id)
        .where(StatsPending.complaint_id == Complaint.id, ComplaintEvent.kind == "filed")
        .exists()
    )


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
                .where(
                    Complaint.id > last_id,
                    Complaint.status.not_in(DONE),
                    # A filing the projector has not applied yet is counted
                    # when it is (app/stats/projector.py, ``_open_moves``).
                    ~_filing_pending(),
                )
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


ROLLUP_TABLES = (StatsDaily, StatsTownDay, StatsUnitMonth, StatsItemMonth, StatsCityItemMonth)


async def rebuild(session: AsyncSession, *, batch: int = 2000) -> int:
    """Recompute every rollup from the event log (run in one transaction).

    Events still queued for the projector are folded here and dropped from
    its queue; events written meanwhile (above ``top``) stay queued for it.
    """
    from app.stats import projector, recent, same_day

    top = await projector.forget_before_rebuild(session)
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
                .where(ComplaintEvent.complaint_id.in_(list(info)), ComplaintEvent.id <= top)
                .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
            )
        ).scalars()
        tallies: dict[str, Tally] = {}
        for e in events:
            tallies[e.complaint_id] = step(tallies.get(e.complaint_id, Tally()), e)
            replayed += 1
        # A case reclassified after ``top`` is counted under the item it had at
        # ``top``: the projector moves it when it applies the reclassification.
        item_at_top = {cid: info[cid].item_code for cid in tallies}
        later = await session.execute(
            select(ComplaintEvent.complaint_id, ComplaintEvent.data)
            .where(
                ComplaintEvent.complaint_id.in_(list(info)),
                ComplaintEvent.id > top,
                ComplaintEvent.kind == "reclassified",
            )
            .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq.desc())
        )
        for cid, data in later.all():
            if cid in item_at_top:
                item_at_top[cid] = str((data or {}).get("from_item_code") or item_at_top[cid])
        for cid, t in tallies.items():
            found = contribution(t)
            if found is None:
                continue
            c = info[cid]
            unit_id, day, deltas = found
            bucket = totals[Key(day, unit_id, item_at_top[cid], c.township_code, c.county_code)]
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
    await recent.recount_after_rebuild(session)
    await rebuild_open_due(session)
    await same_day.rebuild(session)
    return replayed
