from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Category, Department, Item, TaxonomyVersion


async def current_version(session: AsyncSession) -> TaxonomyVersion | None:
    stmt = select(TaxonomyVersion).where(TaxonomyVersion.is_current.is_(True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def categories(session: AsyncSession, version_id: int) -> Sequence[Category]:
    stmt = select(Category).where(Category.version_id == version_id).order_by(Category.position)
    return (await session.execute(stmt)).scalars().all()


async def items_with_department(session: AsyncSession, version_id: int) -> Sequence[Row[Item, str]]:
    stmt = (
        select(Item, Department.name)
        .join(Department, Department.code == Item.department_code)
        .where(Item.version_id == version_id)
        .order_by(Item.position)
    )
    return (await session.execute(stmt)).all()


async def item_by_code(session: AsyncSession, version_id: int, code: str) -> Item | None:
    stmt = select(Item).where(Item.version_id == version_id, Item.code == code)
    return (await session.execute(stmt)).scalar_one_or_none()
