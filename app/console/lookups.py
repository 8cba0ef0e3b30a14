"""Choices for the console's pickers: regions in the user's reach, the item
catalogue, staff names. Reads only; the rules stay in their services."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Department, Region, StaffUser, SupervisionUnit
from app.models.enums import Channel, ComplaintStatus, RegionLevel, StaffRole
from app.regions.repository import prefix_of
from app.taxonomy import service as taxonomy_service
from app.taxonomy.schemas import CategoryRead
from app.workflow.machine import Card, Priority

CHANNEL_LABELS = {
    Channel.online: "小程序",
    Channel.visit: "来访",
    Channel.phone: "来电",
    Channel.letter: "来信",
    Channel.door_to_door: "走访发现",
    Channel.agent: "代办",
    Channel.open311: "外部系统",
}
CARD_LABELS = {Card.red: "红牌", Card.orange: "橙牌", Card.yellow: "黄牌", Card.none: "无牌"}
PRIORITY_LABELS = {
    Priority.emergency: "紧急",
    Priority.group: "群体",
    Priority.elderly: "老年人",
    Priority.disabled: "残疾人",
}
STATUS_CHOICES = [(s.value, s.label) for s in ComplaintStatus]
LEVEL_INDENT = {RegionLevel.city: 0, RegionLevel.county: 1, RegionLevel.township: 2}


@dataclass(frozen=True, slots=True)
class RegionChoice:
    code: str
    label: str
    level: RegionLevel


async def _base_region(session: AsyncSession, user: StaffUser) -> str | None:
    """The region a user works in: the unit's, or a handler's department's."""
    if user.unit_id is not None:
        unit = await session.get(SupervisionUnit, user.unit_id)
        return unit.region_code if unit else None
    return user.region_code


async def regions_in_reach(
    session: AsyncSession, user: StaffUser, *, villages: bool = True
) -> list[RegionChoice]:
    """Regions under the user's own region (everything for an administrator),
    in tree order, for the queue's region filter and the intake's village."""
    stmt = select(Region).order_by(Region.code)
    if user.role is not StaffRole.admin:
        base = await _base_region(session, user)
        if base is None:
            return []
        stmt = stmt.where(Region.code.startswith(prefix_of(base)))
    if not villages:
        stmt = stmt.where(Region.level != RegionLevel.village)
    rows = (await session.execute(stmt)).scalars().all()
    return [
        RegionChoice(
            r.code,
            ("　" * LEVEL_INDENT.get(r.level, 3)) + r.name,
            r.level,
        )
        for r in rows
    ]


async def villages_in_reach(session: AsyncSession, user: StaffUser) -> list[RegionChoice]:
    return [
        RegionChoice(r.code, r.label.strip("　"), r.level)
        for r in await regions_in_reach(session, user)
        if r.level is RegionLevel.village
    ]


async def categories(session: AsyncSession) -> list[CategoryRead]:
    return (await taxonomy_service.snapshot(session)).document.categories


async def departments(session: AsyncSession) -> list[Department]:
    return list((await session.execute(select(Department).order_by(Department.code))).scalars())


async def transfer_regions(session: AsyncSession) -> list[Region]:
    """Where a department may sit: county or city level (the transfer rule)."""
    stmt = (
        select(Region)
        .where(Region.level.in_([RegionLevel.city, RegionLevel.county]))
        .order_by(Region.code)
    )
    return list((await session.execute(stmt)).scalars())


async def staff_names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(wanted))
    )
    return {int(i): str(n) for i, n in rows}


async def cadres_of_unit(session: AsyncSession, unit_id: int) -> list[StaffUser]:
    """Who a case may be assigned to: active 纪检干部 of the unit (the assign
    action checks the same)."""
    stmt = (
        select(StaffUser)
        .where(
            StaffUser.unit_id == unit_id,
            StaffUser.role == StaffRole.supervisor,
            StaffUser.active.is_(True),
        )
        .order_by(StaffUser.display_name)
    )
    return list((await session.execute(stmt)).scalars())
