"""Reference data held per process, so routing a filing is pure CPU.

Filing used to reload the taxonomy version, the item, its department, the
region chain (twice), units, overrides, designations, cadres and the whole
calendar: ten SELECTs per request for rows that change a few times a year.
Here they are loaded once and kept until ``reference_version.token`` changes.
Triggers (migration 0017) give that row a new random token on any write to a
reference table, so no admin path can forget to invalidate; a random token,
not a counter, so a rolled-back change cannot leave a cache that a later,
different change happens to match.

The token is read at most once per ``reference_cache_seconds`` per process
(0: on every use), so another process's change shows within that bound. The
objects are detached ORM rows shared by concurrent requests: read them, never
add them to a session or change them.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import driver
from app.core.config import Settings
from app.core.db import database_key
from app.models import (
    CalendarDay,
    Department,
    DesignatedCadre,
    Item,
    ReferenceVersion,
    Region,
    RoutingOverride,
    StaffUser,
    SupervisionUnit,
    TaxonomyVersion,
)
from app.models.enums import StaffRole
from app.routing.calendar import WorkCalendar
from app.routing.engine import UnitRef


@dataclass
class Reference:
    """One consistent load of everything routing reads."""

    token: str
    taxonomy: TaxonomyVersion | None
    items: dict[str, Item]
    # Every version's items by id, for the name a case of an older taxonomy shows.
    item_names: dict[int, str]
    departments: dict[str, Department]
    regions: dict[str, Region]
    units_by_id: dict[int, SupervisionUnit]
    units_by_region: dict[str, list[SupervisionUnit]]
    # What the routing engine reads of each unit, built once per load, not per
    # filing (a village's chain has some thirty units).
    unit_refs: dict[int, UnitRef]
    overrides: dict[str, list[RoutingOverride]]  # active, by item code
    designations: dict[str, list[DesignatedCadre]]  # active, by item code
    cadres_by_unit: dict[int, list[StaffUser]]  # supervisors, by unit
    calendar_days: dict[date, bool]
    _calendars: dict[str, WorkCalendar] = field(default_factory=dict)
    # What routing derives from the rows above for one item in one village
    # (app/routing/service.py ``_context``): it lives and dies with this
    # load, so a changed unit, override or designation is never served from it.
    contexts: dict[tuple[int, str], Any] = field(default_factory=dict)
    # The part of it that is the village's alone (its chain, units and cadres),
    # shared by every item filed there.
    villages: dict[str, Any] = field(default_factory=dict)

    def chain(self, code: str) -> list[Region]:
        """City first, down to ``code``; empty when the code is unknown."""
        out: list[Region] = []
        node = self.regions.get(code)
        while node is not None and len(out) < 8:
            out.append(node)
            node = self.regions.get(node.parent_code) if node.parent_code else None
        return list(reversed(out))

    def calendar(self, timezone: str) -> WorkCalendar:
        cal = self._calendars.get(timezone)
        if cal is None:
            cal = self._calendars[timezone] = WorkCalendar(self.calendar_days, timezone=timezone)
        return cal


@dataclass
class _Slot:
    reference: Reference | None = None
    checked_at: float = float("-inf")
    checking: bool = False  # a request is reading the token right now
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


# One slot per database (tests run SQLite and PostgreSQL in one process).
_slots: dict[str, _Slot] = defaultdict(_Slot)


_TOKEN = select(ReferenceVersion.token).where(ReferenceVersion.id == 1)


async def _token(session: AsyncSession) -> str:
    # Prebuilt, on the driver (app/core/driver.py): in a filing's autocommit
    # session it takes a kept connection like the filing's own statements,
    # instead of beginning the session for one scalar.
    found = await driver.scalar(session, _TOKEN, {})
    return str(found or "")


def _detach(session: AsyncSession, rows: Iterable[Any]) -> list[Any]:
    out = list(rows)
    for r in out:
        session.expunge(r)
    return out


def unit_ref(u: SupervisionUnit) -> UnitRef:
    return UnitRef(
        id=u.id,
        code=u.code,
        name=u.name,
        kind=u.kind,
        level=u.level,
        region_code=u.region_code,
        group_code=u.group_code,
        active=u.active,
    )


async def _load(session: AsyncSession, token: str) -> Reference:
    async def all_of(stmt: Any) -> list[Any]:
        return _detach(session, (await session.execute(stmt)).scalars().all())

    tv_rows = await all_of(select(TaxonomyVersion).where(TaxonomyVersion.is_current.is_(True)))
    tv = tv_rows[0] if tv_rows else None
    items = await all_of(select(Item).where(Item.version_id == tv.id)) if tv else []
    units = await all_of(select(SupervisionUnit))
    overrides = await all_of(select(RoutingOverride).where(RoutingOverride.revoked_at.is_(None)))
    designations = await all_of(select(DesignatedCadre).where(DesignatedCadre.revoked_at.is_(None)))
    cadres = await all_of(select(StaffUser).where(StaffUser.role == StaffRole.supervisor))
    by_region: dict[str, list[SupervisionUnit]] = defaultdict(list)
    for u in units:
        by_region[u.region_code].append(u)
    by_item_o: dict[str, list[RoutingOverride]] = defaultdict(list)
    for o in overrides:
        by_item_o[o.item_code].append(o)
    by_item_d: dict[str, list[DesignatedCadre]] = defaultdict(list)
    for d in designations:
        by_item_d[d.item_code].append(d)
    by_unit: dict[int, list[StaffUser]] = defaultdict(list)
    for s in cadres:
        if s.unit_id is not None:
            by_unit[s.unit_id].append(s)
    days = (await session.execute(select(CalendarDay.day, CalendarDay.is_workday))).all()
    return Reference(
        token=token,
        taxonomy=tv,
        items={i.code: i for i in items},
        item_names={
            row.id: row.name for row in (await session.execute(select(Item.id, Item.name))).all()
        },
        departments={d.code: d for d in await all_of(select(Department))},
        regions={r.code: r for r in await all_of(select(Region))},
        units_by_id={u.id: u for u in units},
        units_by_region=dict(by_region),
        unit_refs={u.id: unit_ref(u) for u in units},
        overrides=dict(by_item_o),
        designations=dict(by_item_d),
        cadres_by_unit=dict(by_unit),
        calendar_days={r.day: r.is_workday for r in days},
    )


async def get(session: AsyncSession, settings: Settings) -> Reference:
    """The current reference data, reloaded only when its token moved."""
    slot = _slots[database_key(session.get_bind())]
    ref = slot.reference
    if ref is not None and time.monotonic() - slot.checked_at < settings.reference_cache_seconds:
        return ref
    if ref is not None and slot.checking:
        # Another request of this process is reading the token: when the
        # bound passes under load, one read is enough, not one per request
        # in flight (the bound stretches by that one round trip).
        return ref
    slot.checking = True
    try:
        token = await _token(session)
    finally:
        slot.checking = False
    if ref is not None and ref.token == token:
        slot.checked_at = time.monotonic()
        return ref
    async with slot.lock:
        ref = slot.reference
        if ref is None or ref.token != token:
            ref = await _load(session, token)
            slot.reference = ref
        slot.checked_at = time.monotonic()
    return ref


def clear() -> None:
    """Forget every cached load (tests, and after bulk loads in this process)."""
    _slots.clear()
