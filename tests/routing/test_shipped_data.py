"""The shipped reference data routes completely: every item, every village."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from app.models.enums import ItemClass, RegionLevel, UnitKind
from app.reference.loader import ReferenceBundle, load_bundle
from app.routing.calendar import WorkCalendar
from app.routing.engine import (
    RegionChain,
    RegionNode,
    RouteItem,
    UnitDirectory,
    UnitRef,
    route,
)


@pytest.fixture(scope="module")
def bundle() -> ReferenceBundle:
    return load_bundle()


def test_every_item_routes_for_every_village(bundle: ReferenceBundle) -> None:
    units = UnitDirectory(
        UnitRef(i, u.code, u.name, u.kind, u.level, u.region, u.group)
        for i, u in enumerate(bundle.units, start=1)
    )
    regions = {r.code: r for r in bundle.regions}
    departments = {d.code: d for d in bundle.departments}
    items = [
        RouteItem(
            it.code,
            it.name,
            it.klass,
            it.scope,
            it.department,
            departments[it.department].name,
            departments[it.department].group,
            it.tier,
            it.time_limit_days,
        )
        for it in bundle.taxonomies[0].items
    ]
    calendar = WorkCalendar()
    received = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)
    kinds: Counter[UnitKind] = Counter()
    villages = [r for r in bundle.regions if r.level is RegionLevel.village]
    assert len(villages) >= 150
    for v in villages:
        nodes = []
        code: str | None = v.code
        while code:
            r = regions[code]
            nodes.append(RegionNode(r.code, r.name, r.level))
            code = r.parent
        chain = RegionChain(tuple(reversed(nodes)))
        for item in items:
            d = route(item=item, region=chain, units=units, calendar=calendar, received_at=received)
            kinds[d.unit.kind] += 1
            if item.klass is ItemClass.accusation:
                expected = max(item.scope.rank - 1, 0)
                assert d.unit.level.rank == expected, (item.code, v.code)
                assert d.unit.kind is not UnitKind.resident_group
            assert d.due_at >= d.accept_due_at > received
            assert d.unit.region_code in chain.codes
    # Village committees oversee village affairs but never take complaints.
    assert kinds[UnitKind.village_committee] == 0
    assert kinds[UnitKind.township_committee] > 0 and kinds[UnitKind.resident_group] > 0
