"""Where a GeoReport filing happened, as one of our villages (routing needs one).

The specification takes ``lat``/``long``, ``address_string`` or ``address_id``.
Here ``address_id`` is the 12-digit village code; an address names a village
(and, when names repeat, its township or county); a bare point is placed in
the village of the nearest public case reported within a short distance, as
the regions carry no boundaries. What cannot be placed is a 400, never a guess.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.models.enums import RegionLevel
from app.open311 import repository

NEAREST_WITHIN_METRES = 1500.0
NEAREST_LOOKBACK = timedelta(days=730)
EARTH_RADIUS_METRES = 6_371_000.0
VILLAGE_CODE = re.compile(r"[0-9]{12}")


class LocationError(BadRequest):
    code = "location_invalid"


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lng: float


def metres(a: Point, b: Point) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lng - a.lng)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_METRES * math.asin(min(1.0, math.sqrt(h)))


async def by_address_id(session: AsyncSession, address_id: str) -> str:
    if VILLAGE_CODE.fullmatch(address_id):
        for region in await repository.places(session):
            if region.code == address_id and region.level is RegionLevel.village:
                return region.code
    raise LocationError("address_id 应为村（社区）的 12 位区划代码")


async def by_address(session: AsyncSession, address: str) -> str:
    text = re.sub(r"\s+", "", address)
    places = await repository.places(session)
    named = [r for r in places if r.level is RegionLevel.village and r.name in text]
    if len(named) > 1:
        # Names repeat across townships: keep those whose township or county is named too.
        mentioned = {
            r.code for r in places if r.level is not RegionLevel.village and r.name in text
        }
        narrowed = [
            r for r in named if r.parent_code in mentioned or f"{r.code[:6]}000000" in mentioned
        ]
        named = narrowed or named
        # "XX村" inside "XX村委会" and a longer name containing a shorter one: keep the longest.
        longest = max(len(r.name) for r in named)
        named = [r for r in named if len(r.name) == longest]
    if len(named) == 1:
        return named[0].code
    if not named:
        raise LocationError("address_string 中未找到本平台的村（社区）名称，请写明村（社区）")
    raise LocationError("address_string 对应多个村（社区），请同时写明乡镇（街道）")


async def by_point(session: AsyncSession, point: Point, *, now: datetime) -> str:
    degrees = NEAREST_WITHIN_METRES / 111_000.0 / max(0.2, math.cos(math.radians(point.lat)))
    best: tuple[float, str] | None = None
    for lat, lng, code in await repository.located_near(
        session, point.lat, point.lng, degrees=degrees, since=now - NEAREST_LOOKBACK
    ):
        d = metres(point, Point(lat, lng))
        if d <= NEAREST_WITHIN_METRES and (best is None or d < best[0]):
            best = (d, code)
    if best is None:
        raise LocationError(
            "仅凭坐标无法确定所在村（社区），请同时提供 address_string（写明村或社区）或 address_id"
        )
    return best[1]
