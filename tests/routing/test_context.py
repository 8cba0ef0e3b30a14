"""What routing derives per item and village, kept with the reference load:
bounded, and the same decision as worked out afresh."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Region
from app.models.enums import RegionLevel
from app.routing import refcache
from app.routing import service as routing_service
from app.routing.engine import RouteDecision
from tests.conftest import make_settings

pytestmark = pytest.mark.usefixtures("seeded")

AT = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


async def test_kept_contexts_are_bounded_and_decide_the_same(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    villages = list(
        (
            await session.execute(
                select(Region.code).where(Region.level == RegionLevel.village).limit(3)
            )
        ).scalars()
    )
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
