from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DesignatedCadre, RoutingOverride, StaffUser, SupervisionUnit
from app.models.enums import StaffRole


async def units_in_regions(
    session: AsyncSession, region_codes: Sequence[str]
) -> Sequence[SupervisionUnit]:
    stmt = select(SupervisionUnit).where(SupervisionUnit.region_code.in_(region_codes))
    return (await session.execute(stmt)).scalars().all()


async def units_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[SupervisionUnit]:
    if not ids:
        return []
    return (
        (await session.execute(select(SupervisionUnit).where(SupervisionUnit.id.in_(ids))))
        .scalars()
        .all()
    )


async def active_overrides(
    session: AsyncSession, item_code: str, region_codes: Sequence[str]
) -> Sequence[RoutingOverride]:
    stmt = select(RoutingOverride).where(
        RoutingOverride.item_code == item_code,
        RoutingOverride.region_code.in_(region_codes),
        RoutingOverride.revoked_at.is_(None),
    )
    return (await session.execute(stmt)).scalars().all()


async def active_designations(
    session: AsyncSession, item_code: str, unit_ids: Sequence[int]
) -> Sequence[DesignatedCadre]:
    stmt = select(DesignatedCadre).where(
        DesignatedCadre.item_code == item_code,
        DesignatedCadre.unit_id.in_(unit_ids),
        DesignatedCadre.revoked_at.is_(None),
    )
    return (await session.execute(stmt)).scalars().all()


async def cadres_of_units(session: AsyncSession, unit_ids: Sequence[int]) -> Sequence[StaffUser]:
    stmt = select(StaffUser).where(
        StaffUser.unit_id.in_(unit_ids), StaffUser.role == StaffRole.supervisor
    )
    return (await session.execute(stmt)).scalars().all()
