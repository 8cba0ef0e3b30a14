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
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Complaint,
    ComplaintEvent,
    StatsDaily,
    StatsItemMonth,
    StatsTownDay,
    StatsUnitMonth,
)
from app.models.stats import METRICS

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


async def _upsert(
    session: AsyncSession, model: Any, keys: dict[str, Any], deltas: dict[str, int]
) -> None:
    where = and_(*(getattr(model, k) == v for k, v in keys.items()))
    values = {m: getattr(model, m) + v for m, v in deltas.items()}
    stmt = update(model).where(where).values(**values).execution_options(synchronize_session=False)
    if (await session.execute(stmt)).rowcount:  # type: ignore[attr-defined]
        return
    try:
        async with session.begin_nested():
            session.add(model(**keys, **{m: deltas.get(m, 0) for m in METRICS}))
    except IntegrityError:  # a concurrent transaction created the row first
        await session.execute(stmt)


async def _add(session: AsyncSession, key: Key, deltas: dict[str, int]) -> None:
    for model, keys in coarse_keys(key):
        await _upsert(session, model, keys, deltas)


async def apply(session: AsyncSession, complaint: Complaint, event: ComplaintEvent) -> None:
    """Called with every event written; uses the complaint's current unit."""
    found = increments_for(event, complaint.unit_id)
    if found is None:
        return
    unit_id, day, deltas = found
    await _add(
        session,
        Key(day, unit_id, complaint.item_code, complaint.township_code, complaint.county_code),
        deltas,
    )


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
    return replayed
