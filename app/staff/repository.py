from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Department, StaffUser, SupervisionUnit


async def get_by_username(session: AsyncSession, username: str) -> StaffUser | None:
    result = await session.execute(select(StaffUser).where(StaffUser.username == username))
    return result.scalar_one_or_none()


async def get_unit_by_code(session: AsyncSession, code: str) -> SupervisionUnit | None:
    result = await session.execute(select(SupervisionUnit).where(SupervisionUnit.code == code))
    return result.scalar_one_or_none()


async def department_exists(session: AsyncSession, code: str) -> bool:
    return (await session.get(Department, code)) is not None
