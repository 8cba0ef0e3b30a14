from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Department,
    LoginOutcome,
    Region,
    StaffLoginAttempt,
    StaffUser,
    SupervisionUnit,
)


async def get_by_username(session: AsyncSession, username: str) -> StaffUser | None:
    result = await session.execute(select(StaffUser).where(StaffUser.username == username))
    return result.scalar_one_or_none()


async def get_unit_by_code(session: AsyncSession, code: str) -> SupervisionUnit | None:
    result = await session.execute(select(SupervisionUnit).where(SupervisionUnit.code == code))
    return result.scalar_one_or_none()


async def department_exists(session: AsyncSession, code: str) -> bool:
    return (await session.get(Department, code)) is not None


async def signed_in_from(session: AsyncSession, staff_id: int, ip: str, *, since: datetime) -> bool:
    """Whether the account signed in successfully from this IP since then."""
    stmt = select(
        exists().where(
            StaffLoginAttempt.staff_id == staff_id,
            StaffLoginAttempt.ip == ip[:45],
            StaffLoginAttempt.outcome == LoginOutcome.success,
            StaffLoginAttempt.at >= since,
        )
    )
    return bool((await session.execute(stmt)).scalar())


async def login_attempts(
    session: AsyncSession, staff_id: int, *, failed_only: bool, limit: int
) -> Sequence[StaffLoginAttempt]:
    stmt = (
        select(StaffLoginAttempt)
        .where(StaffLoginAttempt.staff_id == staff_id)
        .order_by(StaffLoginAttempt.at.desc(), StaffLoginAttempt.id.desc())
        .limit(limit)
    )
    if failed_only:
        stmt = stmt.where(StaffLoginAttempt.outcome != LoginOutcome.success)
    return (await session.execute(stmt)).scalars().all()


async def context_names(session: AsyncSession, user: StaffUser) -> list[str | None]:
    """Names tied to an account (its unit, department, region), for the password policy."""
    names: list[str | None] = []
    if user.unit_id is not None:
        unit = await session.get(SupervisionUnit, user.unit_id)
        if unit is not None:
            names += [unit.code, unit.name]
    if user.department_code:
        department = await session.get(Department, user.department_code)
        names.append(department.name if department else None)
    if user.region_code:
        region = await session.get(Region, user.region_code)
        names.append(region.name if region else None)
    return names


async def delete_attempts_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(delete(StaffLoginAttempt).where(StaffLoginAttempt.at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
