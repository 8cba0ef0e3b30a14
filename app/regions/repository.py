from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Region
from app.models.enums import RegionLevel

# Statistical codes are hierarchical: the significant prefix of each level.
PREFIX_LENGTH = {
    RegionLevel.city: 4,
    RegionLevel.county: 6,
    RegionLevel.township: 9,
    RegionLevel.village: 12,
}


def prefix_of(code: str) -> str:
    """The significant prefix of a 12-digit code, read from its structure
    (city 4, county 6, township 9, village 12 digits): 511702005010 stays
    whole, where stripping zeros would also match 511702005011–019."""
    if code[4:] == "0" * 8:
        return code[:4]
    if code[6:] == "0" * 6:
        return code[:6]
    if code[9:] == "000":
        return code[:9]
    return code


def ancestor_codes(code: str) -> list[str]:
    """City first, down to ``code`` itself, derived from the code's digits."""
    out: list[str] = []
    for level in RegionLevel:
        n = PREFIX_LENGTH[level]
        candidate = code[:n].ljust(12, "0")
        if candidate not in out:
            out.append(candidate)
        if candidate == code:
            break
    return out


async def get(session: AsyncSession, code: str) -> Region | None:
    return await session.get(Region, code)


async def get_by_scene(session: AsyncSession, scene: str) -> Region | None:
    return (await session.execute(select(Region).where(Region.scene == scene))).scalar_one_or_none()


async def chain(session: AsyncSession, code: str) -> list[Region]:
    """The region and its ancestors, city first, in one query."""
    rows = (
        await session.execute(select(Region).where(Region.code.in_(ancestor_codes(code))))
    ).scalars()
    by_code = {r.code: r for r in rows}
    out: list[Region] = []
    node = by_code.get(code)
    while node is not None:
        out.append(node)
        node = by_code.get(node.parent_code) if node.parent_code else None
    return list(reversed(out))


async def children(
    session: AsyncSession, code: str, *, limit: int, offset: int
) -> Sequence[Region]:
    stmt = (
        select(Region)
        .where(Region.parent_code == code)
        .order_by(Region.code)
        .limit(limit)
        .offset(offset)
    )
    return (await session.execute(stmt)).scalars().all()
