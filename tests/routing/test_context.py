"""What routing derives per item and village, kept with the reference load:
bounded, and the same decision as worked out afresh."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Region, RoutingOverride, StaffUser
from app.models.enums import RegionLevel
from app.routing import refcache
from app.routing import service as routing_service
from app.routing.engine import RouteDecision
from tests.conftest import make_settings

pytestmark = pytest.mark.usefixtures("seeded")

AT = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


async def _three_villages(session: AsyncSession) -> list[str]:
    stmt = select(Region.code).where(Region.level == RegionLevel.village).limit(3)
    return list((await session.execute(stmt)).scalars())


async def test_kept_contexts_are_bounded_and_decide_the_same(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    villages = await _three_villages(session)
    assert len(villages) == 3
    item = await routing_service.current_item(session, "0101", settings=settings)
    ref = await refcache.get(session, settings)
    ref.contexts.clear()
    monkeypatch.setattr(routing_service, "CONTEXTS_KEPT", 2)

    async def decide(code: str) -> RouteDecision:
        return await routing_service.decide(
            session, item=item, region_code=code, received_at=AT, settings=settings
        )

    first = [await decide(code) for code in villages]
    assert list(ref.contexts) == [(item.id, villages[1]), (item.id, villages[2])]
    ref.contexts.clear()
    assert [await decide(code) for code in villages] == first
    # Served from the kept context: the same decision, trace and all.
    assert await decide(villages[2]) == first[2]


async def test_a_village_part_is_shared_across_items_and_bounded(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    villages = await _three_villages(session)
    one = await routing_service.current_item(session, "0101", settings=settings)
    two = await routing_service.current_item(session, "0102", settings=settings)
    ref = await refcache.get(session, settings)
    ref.contexts.clear()
    ref.villages.clear()
    monkeypatch.setattr(routing_service, "VILLAGES_KEPT", 2)
    path = ref.chain(villages[0])
    a, b = routing_service._context(ref, one, path), routing_service._context(ref, two, path)
    assert a.chain is b.chain and a.units is b.units and a.staff is b.staff
    assert list(ref.villages) == [villages[0]]
    for code in villages[1:]:
        routing_service._context(ref, one, ref.chain(code))
    assert list(ref.villages) == villages[1:]


async def test_an_override_to_a_unit_off_the_chain_brings_that_unit_and_its_cadres(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The village's part is shared: a unit an override adds goes into that
    item's context only, with its cadres, and the village's part is untouched."""
    settings = make_settings()
    ref = await refcache.get(session, settings)
    ref.contexts.clear()
    ref.villages.clear()
    villages = [r.code for r in ref.regions.values() if r.level is RegionLevel.village]
    here = ref.chain(villages[0])
    on_chain = {u.id for code in (r.code for r in here) for u in ref.units_by_region.get(code, ())}
    off = next(u for u in ref.units_by_id.values() if u.id not in on_chain)
    cadre = StaffUser(id=-5, unit_id=off.id, display_name="外单位干部", active=True)
    monkeypatch.setattr(ref, "cadres_by_unit", {**ref.cadres_by_unit, off.id: [cadre]})
    item = await routing_service.current_item(session, "0101", settings=settings)
    plain = routing_service._context(
        ref, await routing_service.current_item(session, "0102", settings=settings), here
    )
    override = RoutingOverride(
        id=-1,
        item_code=item.code,
        region_code=here[-1].code,
        unit_id=off.id,
        reason="专项",
        created_by="test",
    )
    ref.overrides = {**ref.overrides, item.code: [override]}
    try:
        moved = routing_service._context(ref, item, here)
    finally:
        ref.overrides = {k: v for k, v in ref.overrides.items() if v != [override]}
        ref.contexts.clear()
    assert moved.units.get(off.id) is not None
    assert (-5, off.id, "外单位干部", True) in moved.staff
    assert moved.chain is plain.chain
    # The village's part, shared with other items, did not take the unit in.
    assert plain.units.get(off.id) is None and off.id not in {s[1] for s in plain.staff}
    assert ref.villages[here[-1].code].units == tuple(
        u for code in (r.code for r in here) for u in ref.units_by_region.get(code, ())
    )
