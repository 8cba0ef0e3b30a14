"""The statistics projector: rollups follow the event log, off the request.

Every inserted event is queued in ``stats_pending`` by a trigger (migration
0017), in the writer's own transaction. The projector takes a batch, folds
each claimed event into its case's tally (``rollup.fold`` over the case's
earlier events, so the order events are applied in does not matter: each adds
the change its own step made), adds the deltas per rollup row in memory, and
writes each row once. It also moves each touched case in ``stats_open_due``.
Claiming deletes the queued rows in the same transaction that applies them,
so a crash rolls both back and a replay applies nothing twice.

Several projectors may run (every app process and every ``ydt worker``): on
PostgreSQL they take turns on an advisory lock, and claims use SKIP LOCKED;
SQLite serialises writers anyway. Taking turns, not splitting batches, keeps
two projectors from upserting the same hot rows in different orders
(deadlocks) and from moving one case in ``stats_open_due`` twice.

Why off the request: every filing updated the same township-day and
unit-month rows, and held those row locks to its commit (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import members
from app.core.clock import Clock
from app.core.config import Settings
from app.models import Complaint, ComplaintEvent, ProjectorMark, StatsOpenDue, StatsPending
from app.stats import recent, rollup, same_day

logger = logging.getLogger(__name__)

MARK = "stats"
# pg_advisory_xact_lock key: "ydt stats projector".
LOCK_KEY = 0x5944_5450_524F_4A00 & 0x7FFF_FFFF_FFFF_FFFF
# What a caller that names no batch gets: the worker's own setting's default.
DEFAULT_BATCH: int = Settings.model_fields["projector_batch"].default


@dataclass(frozen=True, slots=True)
class Lag:
    pending: int
    oldest: datetime | None  # the oldest event not yet applied
    high_water: int

    def seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest).total_seconds()) if self.oldest else 0.0


async def take_turn(session: AsyncSession, *, wait: bool = False) -> bool:
    """The projector's turn, to the end of the transaction: whoever moves
    rollup rows holds it (projectors, rebuilds, same-day recounts)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        return True
    got = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    return bool(got.scalar_one())


async def _claim(session: AsyncSession, batch: int) -> list[tuple[int, str]]:
    """Delete up to ``batch`` queued events, oldest first; they are ours now."""
    pick = select(StatsPending.event_id).order_by(StatsPending.event_id).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    rows = await session.execute(
        delete(StatsPending)
        .where(StatsPending.event_id.in_(pick.scalar_subquery()))
        .returning(StatsPending.event_id, StatsPending.complaint_id)
    )
    return [(int(r[0]), str(r[1])) for r in rows.all()]


def _items(current: str, events: list[Any]) -> tuple[str, list[str]]:
    """The item a case was counted under before its first event, and after
    each event: its present item, walked back through reclassifications (a
    reclassified event names the item it moved from)."""
    after: list[str] = [current] * len(events)
    item = current
    for i in range(len(events) - 1, -1, -1):
        after[i] = item
        if events[i].kind == "reclassified":
            item = str((events[i].data or {}).get("from_item_code") or item)
    return item, after


def _row_deltas(
    complaint: Any,
    events: list[Any],
    items: tuple[str, list[str]],
    claimed: set[int],
    out: dict[Any, dict[str, int]],
) -> None:
    """Add what each claimed event of one case changed to ``out`` (per rollup row).

    Each side of a change is keyed by the item in force on that side, so a
    reclassification moves the case's counts from the old item to the new one."""
    first, after = items
    tally = rollup.Tally()
    for i, e in enumerate(events):
        before = tally
        tally = rollup.step(tally, e)
        if e.id not in claimed or e.kind not in rollup.COUNTED:
            continue
        item_before = after[i - 1] if i else first
        old, new = rollup.contribution(before), rollup.contribution(tally)
        if old == new and item_before == after[i]:
            continue
        for found, sign, item in ((old, -1, item_before), (new, 1, after[i])):
            if found is None:
                continue
            unit_id, day, counts = found
            key = rollup.Key(day, unit_id, item, complaint.township_code, complaint.county_code)
            for model, keys in rollup.coarse_keys(key):
                bucket = out.setdefault((model, tuple(keys.items())), defaultdict(int))
                for m, v in counts.items():
                    bucket[m] += sign * v


def _open_moves(
    complaints: Iterable[Any],
    counted_items: dict[str, str],
    fresh: set[str],
    out: dict[tuple[date, int, str, str, str], int],
) -> list[dict[str, Any]]:
    """Where each case must be counted in stats_open_due now, and the bumps.

    A case is counted at its marks (open_unit_id, open_due_day) once its
    filing has been applied. The filing writes the marks where the case will
    be counted (``filing.build_case``), so a case in ``fresh`` (its filing in
    this batch) is counted nowhere yet, and its row is rewritten only if it
    moved since: a new case costs no second write of its row.

    ``counted_items``: the item a case's present open row was counted under
    (before this batch's reclassifications), when it differs from its own."""
    marks: list[dict[str, Any]] = []
    for c in complaints:
        wanted = rollup.open_key(c)
        marked = (
            (c.open_unit_id, c.open_due_day)
            if c.open_due_day is not None and c.open_unit_id is not None
            else None
        )
        counted = None if c.id in fresh else marked
        counted_item = counted_items.get(c.id, c.item_code)
        if wanted == counted and counted_item == c.item_code:
            continue
        for where, delta, item in ((counted, -1, counted_item), (wanted, 1, c.item_code)):
            if where is not None:
                k = (where[1], where[0], item, c.township_code, c.county_code)
                out[k] = out.get(k, 0) + delta
        if wanted != marked:
            unit_id, day = wanted if wanted else (None, None)
            marks.append({"b_id": c.id, "unit": unit_id, "day": day})
    return marks


async def project(session: AsyncSession, *, batch: int = DEFAULT_BATCH, now: datetime) -> int:
    """Apply one batch of queued events; returns how many (0: nothing, or not our turn).

    Runs in the caller's transaction, which must commit for the work to count.
    """
    if not await take_turn(session):
        return 0
    # Before the batch, so its receipts land in the window they belong to.
    window_end = await recent.keep_up(session, rollup.local_date(now))
    claimed = await _claim(session, batch)
    if not claimed:
        return 0
    ids = {eid for eid, _ in claimed}
    case_ids = sorted({cid for _, cid in claimed})
    complaints = (
        await session.execute(
            select(
                Complaint.id,
                Complaint.status,
                Complaint.unit_id,
                Complaint.due_at,
                Complaint.item_code,
                Complaint.township_code,
                Complaint.county_code,
                Complaint.open_unit_id,
                Complaint.open_due_day,
            ).where(members.one_of(session, Complaint.id, case_ids))
        )
    ).all()
    events = (
        await session.execute(
            select(
                ComplaintEvent.id,
                ComplaintEvent.complaint_id,
                ComplaintEvent.kind,
                ComplaintEvent.data,
                ComplaintEvent.created_at,
            )
            .where(
                members.one_of(session, ComplaintEvent.complaint_id, case_ids),
                ComplaintEvent.kind.in_(rollup.COUNTED),
            )
            .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
        )
    ).all()
    by_case: dict[str, list[Any]] = defaultdict(list)
    for e in events:
        by_case[e.complaint_id].append(e)
    rows: dict[Any, dict[str, int]] = {}
    counted_items: dict[str, str] = {}
    for c in complaints:
        case_events = by_case.get(c.id, [])
        items = _items(c.item_code, case_events)
        _row_deltas(c, case_events, items, ids, rows)
        # The open row was last counted before this batch's first event of the case.
        firsts = [i for i, e in enumerate(case_events) if e.id in ids]
        if firsts:
            counted_items[c.id] = items[1][firsts[0] - 1] if firsts[0] else items[0]
    by_table: dict[Any, list[tuple[dict[str, Any], dict[str, int]]]] = defaultdict(list)
    for (model, keys), counts in rows.items():
        by_table[model].append((dict(keys), counts))
    # One statement per table (tables in a fixed order, rows in key order, so
    # two writers lock rows in the same order).
    for model in sorted(by_table, key=lambda m: m.__name__):
        await rollup.upsert_many(session, model, by_table[model])
    await recent.add(session, window_end, ((m, dict(k), c) for (m, k), c in rows.items()))
    bumps: dict[tuple[date, int, str, str, str], int] = {}
    fresh = {e.complaint_id for e in events if e.kind == "filed" and e.id in ids}
    marks = _open_moves(complaints, counted_items, fresh, bumps)
    await rollup.upsert_many(
        session,
        StatsOpenDue,
        (
            (
                {
                    "due_day": due_day,
                    "unit_id": unit_id,
                    "item_code": item,
                    "township_code": town,
                    "county_code": county,
                },
                {"open": delta},
            )
            for (due_day, unit_id, item, town, county), delta in bumps.items()
        ),
    )
    if marks:
        table: Any = Complaint.__table__
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(open_unit_id=bindparam("unit"), open_due_day=bindparam("day")),
            marks,
        )
    # Acceptance and closure days for 两个当天, from the cases' present state.
    await same_day.recount(session, case_ids)
    await _advance(session, max(ids), len(ids), now)
    return len(ids)


async def _advance(session: AsyncSession, high_water: int, applied: int, now: datetime) -> None:
    mark = await session.get(ProjectorMark, MARK, with_for_update=True)
    if mark is None:
        mark = ProjectorMark(name=MARK, high_water=high_water, applied=applied, updated_at=now)
        session.add(mark)
    else:
        mark.high_water = max(mark.high_water, high_water)
        mark.applied += applied
        mark.updated_at = now
    await session.flush()


async def drain(session: AsyncSession, *, now: datetime, batch: int = DEFAULT_BATCH) -> int:
    """Project until nothing is queued (tests, ``ydt stats project``)."""
    total = 0
    while n := await project(session, batch=batch, now=now):
        total += n
    return total


async def lag(session: AsyncSession) -> Lag:
    """How far the rollups trail the event log: two cheap reads."""
    count, oldest = (
        await session.execute(select(func.count(), func.min(StatsPending.created_at)))
    ).one()
    mark = await session.get(ProjectorMark, MARK)
    return Lag(int(count), oldest, mark.high_water if mark else 0)


def worth_warning(seconds: float, settings: Settings) -> bool:
    """Whether the statistics trail the event log by enough to tell people
    (``/readyz``, the dashboard): past ``YDT_PROJECTOR_LAG_WARN_SECONDS`` the
    worker is likely down."""
    return seconds > settings.projector_lag_warn_seconds


async def as_of(session: AsyncSession, now: datetime) -> datetime:
    """The moment up to which statistics include every event."""
    oldest = (await session.execute(select(func.min(StatsPending.created_at)))).scalar_one()
    return min(oldest, now) if oldest is not None else now


async def forget_before_rebuild(session: AsyncSession) -> int:
    """A rebuild folds every event it can see; those must not be applied again.

    Returns the newest event id the rebuild may fold; queued events above it
    (written meanwhile) stay queued and are projected afterwards.
    """
    await take_turn(session, wait=True)
    top = (await session.execute(select(func.max(ComplaintEvent.id)))).scalar_one() or 0
    await session.execute(delete(StatsPending).where(StatsPending.event_id <= top))
    return int(top)


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    *,
    interval: float,
    batch: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Project forever (the worker's and, optionally, each app process's task)."""
    while stop is None or not stop.is_set():
        try:
            async with sessionmaker() as s:
                n = await project(s, batch=batch, now=clock.now())
                await s.commit()
            if n >= batch:
                continue  # a full batch: more are waiting, no sleep while behind
            # A partial batch took everything queued: wait for more to gather.
            # Going straight back under steady filing load applied a filing
            # or two per batch and paid a batch's dozen statements for each
            # (1.6 ms of the worker's CPU per filing, bench/README.md); the
            # interval bounds the lag this adds.
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad batch must not stop projection; it is retried
            logger.exception("projector batch failed")
        await asyncio.sleep(interval)
