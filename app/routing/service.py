"""Gathering what the pure routing engine needs, in a handful of queries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import NotFound, UnprocessableEntity
from app.models import Department, Item, Region, SupervisionUnit
from app.models.enums import RegionLevel
from app.regions import service as regions_service
from app.routing import refcache
from app.routing.engine import (
    Cadre,
    Override,
    RegionChain,
    RegionNode,
    RouteDecision,
    RouteItem,
    RoutingError,
    UnitDirectory,
    route,
)
from app.taxonomy import repository as taxonomy_repository
from app.taxonomy import service as taxonomy_service

# Open-case counts per cadre; the complaints feature registers the real one.
LoadCounter = Callable[[AsyncSession, Sequence[int]], Awaitable[Mapping[int, int]]]


async def _no_load(session: AsyncSession, staff_ids: Sequence[int]) -> Mapping[int, int]:
    return {}


_load_counter: LoadCounter = _no_load


def register_load_counter(fn: LoadCounter) -> None:
    global _load_counter
    _load_counter = fn


class Unroutable(UnprocessableEntity):
    code = "unroutable"


async def route_item_for(session: AsyncSession, item: Item) -> RouteItem:
    dept = await session.get(Department, item.department_code)
    if dept is None:  # guarded by a foreign key; kept for a clear message
        raise NotFound(f"事项 {item.code} 的主管部门不存在")
    return _route_item(item, dept)


def _route_item(item: Item, dept: Department) -> RouteItem:
    return RouteItem(
        code=item.code,
        name=item.name,
        klass=item.klass,
        scope=item.scope,
        department_code=dept.code,
        department_name=dept.name,
        group_code=dept.group_code,
        tier=item.tier,
        time_limit_days=item.time_limit_days,
    )


async def current_item(
    session: AsyncSession,
    item_code: str,
    *,
    allow_retired: bool = False,
    settings: Settings | None = None,
) -> Item:
    """The item of the current taxonomy; from the process cache when ``settings`` is given."""
    item: Item | None
    if settings is not None:
        ref = await refcache.get(session, settings)
        if ref.taxonomy is None:
            await taxonomy_service.current(session)  # raises the usual 503
        item = ref.items.get(item_code)
    else:
        tv = await taxonomy_service.current(session)
        item = await taxonomy_repository.item_by_code(session, tv.id, item_code)
    if item is None or (item.retired and not allow_retired):
        raise taxonomy_service.ItemNotFound(f"事项 {item_code} 不存在或已停用，请重新选择")
    return item


async def region_chain(session: AsyncSession, region_code: str, settings: Settings) -> list[Region]:
    """``regions_service.get_chain`` from the process cache (same errors)."""
    path = (await refcache.get(session, settings)).chain(region_code)
    if not path or path[-1].code != region_code:
        return await regions_service.get_chain(session, region_code)  # its 400/404
    return path


@dataclass(frozen=True, slots=True)
class _Context:
    """Everything routing reads for one item in one village, but the clock
    and the cadres' open-case counts: derived once per reference load
    (``refcache.Reference.contexts``), not on every filing."""

    item: RouteItem
    chain: RegionChain
    units: UnitDirectory
    overrides: tuple[Override, ...]
    staff: tuple[tuple[int, int, str, bool], ...]  # (id, unit, name, active)
    designated: dict[tuple[int, str], int]


@dataclass(frozen=True, slots=True)
class _Village:
    """What routing reads for a village whatever the item: its chain, the
    units along it and their cadres. Items × villages are many and a pair
    seldom repeats soon (in the bench's mix of real filings, 58% of 1,500
    filings found no context for their pair); a village's part repeats
    across items, and building it was most of a context's cost."""

    chain: RegionChain
    codes: frozenset[str]
    units: tuple[SupervisionUnit, ...]
    unit_ids: frozenset[int]
    directory: UnitDirectory
    staff: tuple[tuple[int, int, str, bool], ...]


# Villages × items may run to hundreds of thousands; the busy pairs are few.
CONTEXTS_KEPT = 4096
# A city has a few thousand villages and communities.
VILLAGES_KEPT = 8192


def _kept(cache: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    if len(cache) >= limit:
        del cache[next(iter(cache))]  # the oldest
    cache[key] = value


def _staff(
    ref: refcache.Reference, unit_ids: Iterable[int]
) -> tuple[tuple[int, int, str, bool], ...]:
    return tuple(
        (s.id, s.unit_id, s.display_name, s.active)
        for uid in sorted(unit_ids)
        for s in ref.cadres_by_unit.get(uid, ())
        if s.unit_id is not None
    )


def _village(ref: refcache.Reference, path: Sequence[Region]) -> _Village:
    code = path[-1].code
    found: _Village | None = ref.villages.get(code)
    if found is not None:
        return found
    chain = RegionChain(tuple(RegionNode(r.code, r.name, r.level) for r in path))
    units = tuple(u for c in chain.codes for u in ref.units_by_region.get(c, ()))
    unit_ids = frozenset(u.id for u in units)
    found = _Village(
        chain=chain,
        codes=frozenset(chain.codes),
        units=units,
        unit_ids=unit_ids,
        directory=UnitDirectory(ref.unit_refs[u.id] for u in units),
        staff=_staff(ref, unit_ids),
    )
    _kept(ref.villages, code, found, VILLAGES_KEPT)
    return found


def _context(ref: refcache.Reference, item: Item, path: Sequence[Region]) -> _Context:
    key = (item.id, path[-1].code)
    found: _Context | None = ref.contexts.get(key)
    if found is not None:
        return found
    village = _village(ref, path)
    dept = ref.departments.get(item.department_code)
    if dept is None:  # guarded by a foreign key; kept for a clear message
        raise NotFound(f"事项 {item.code} 的主管部门不存在")
    overrides = [o for o in ref.overrides.get(item.code, ()) if o.region_code in village.codes]
    # An override may name a unit off the village's chain: then it is routed
    # among, and its cadres picked from, that unit too.
    further = [
        ref.units_by_id[o.unit_id]
        for o in overrides
        if o.unit_id not in village.unit_ids and o.unit_id in ref.units_by_id
    ]
    if further:
        unit_ids = village.unit_ids | {u.id for u in further}
        directory = UnitDirectory(ref.unit_refs[u.id] for u in (*village.units, *further))
        staff = _staff(ref, unit_ids)
    else:
        unit_ids, directory, staff = village.unit_ids, village.directory, village.staff
    designations = [d for d in ref.designations.get(item.code, ()) if d.unit_id in unit_ids]
    found = _Context(
        item=_route_item(item, dept),
        chain=village.chain,
        units=directory,
        overrides=tuple(
            Override(o.id, o.item_code, o.region_code, o.unit_id, o.reason, o.created_by)
            for o in overrides
        ),
        staff=staff,
        designated={(d.unit_id, d.item_code): d.staff_id for d in designations},
    )
    _kept(ref.contexts, key, found, CONTEXTS_KEPT)
    return found


async def decide(
    session: AsyncSession,
    *,
    item: Item,
    region_code: str,
    received_at: datetime,
    settings: Settings,
    accusation: bool | None = None,
    accused_level: RegionLevel | None = None,
) -> RouteDecision:
    """Everything but the cadres' open-case counts comes from the process cache."""
    ref = await refcache.get(session, settings)
    path = await region_chain(session, region_code, settings)
    ctx = _context(ref, item, path)
    loads = await _load_counter(session, [s[0] for s in ctx.staff])
    try:
        return route(
            item=ctx.item,
            region=ctx.chain,
            units=ctx.units,
            calendar=ref.calendar(settings.timezone),
            received_at=received_at,
            overrides=ctx.overrides,
            cadres=[
                Cadre(sid, unit_id, name, loads.get(sid, 0), active)
                for sid, unit_id, name, active in ctx.staff
            ],
            designated=ctx.designated,
            accusation=accusation,
            accused_level=accused_level,
        )
    except RoutingError as exc:
        raise Unroutable(str(exc)) from exc
