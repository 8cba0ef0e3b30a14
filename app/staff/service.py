"""Staff accounts: creation, and login with a lockout against password guessing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError, BadRequest, Forbidden, Unauthorized
from app.core.security import hash_password, password_needs_rehash, verify_password
from app.models import Region, StaffUser
from app.models.enums import RegionLevel, StaffRole
from app.staff import repository
from app.staff.exceptions import DepartmentNotFound, UnitNotFound, UsernameTaken
from app.staff.schemas import StaffCreate


async def create_staff(session: AsyncSession, payload: StaffCreate, *, now: datetime) -> StaffUser:
    if await repository.get_by_username(session, payload.username) is not None:
        raise UsernameTaken(f"用户名 {payload.username} 已存在")
    unit_id: int | None = None
    if payload.unit_code:
        unit = await repository.get_unit_by_code(session, payload.unit_code)
        if unit is None:
            raise UnitNotFound(f"监督单位 {payload.unit_code} 不存在")
        unit_id = unit.id
    if payload.department_code and not await repository.department_exists(
        session, payload.department_code
    ):
        raise DepartmentNotFound(f"职能部门 {payload.department_code} 不存在")
    region = await session.get(Region, payload.region_code) if payload.region_code else None
    if payload.region_code and region is None:
        raise UnitNotFound(f"区划 {payload.region_code} 不存在")
    if payload.role in (StaffRole.clerk, StaffRole.committee) and (
        region is None or region.level is not RegionLevel.village
    ):
        raise BadRequest("村务公开经办人和村务监督委员会成员须属于具体的村（社区）")
    user = StaffUser(
        username=payload.username,
        password_hash=await asyncio.to_thread(hash_password, payload.password),
        display_name=payload.display_name,
        role=payload.role,
        unit_id=unit_id,
        department_code=payload.department_code,
        region_code=payload.region_code,
        phone=payload.phone,
        active=True,
        failed_login_count=0,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# Verified when the username is unknown, so both paths cost the same time.
_DUMMY_HASH = hash_password("dummy-password-for-timing")


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    user: StaffUser | None
    error: AppError | None


async def authenticate(
    session: AsyncSession, *, username: str, password: str, now: datetime
) -> LoginOutcome:
    """Check a password; failures are recorded (the caller must commit them)."""
    user = await repository.get_by_username(session, username.strip().lower())
    if user is None:
        await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
        return LoginOutcome(None, Unauthorized("用户名或密码错误"))
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        retry = str(int((user.locked_until - now).total_seconds()) + 1)
        return LoginOutcome(
            None,
            _Locked(
                f"密码错误次数过多，账号已锁定，请 {minutes} 分钟后再试",
                headers={"Retry-After": retry},
            ),
        )
    # argon2 takes ~0.2 s of CPU by design: off the event loop, so a login
    # does not stall every other request on this worker.
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        user.failed_login_count += 1
        if user.failed_login_count >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_login_count = 0
        await session.flush()
        return LoginOutcome(None, Unauthorized("用户名或密码错误"))
    if not user.active:
        return LoginOutcome(None, Forbidden("账号已停用，请联系管理员"))
    user.failed_login_count = 0
    user.locked_until = None
    if password_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    await session.flush()
    return LoginOutcome(user, None)


class _Locked(Forbidden):
    code = "account_locked"


async def list_staff(
    session: AsyncSession, *, unit_id: int | None, limit: int, offset: int
) -> Sequence[StaffUser]:
    stmt = select(StaffUser).order_by(StaffUser.id).limit(limit).offset(offset)
    if unit_id is not None:
        stmt = stmt.where(StaffUser.unit_id == unit_id)
    return (await session.execute(stmt)).scalars().all()
