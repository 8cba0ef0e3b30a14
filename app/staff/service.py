"""Staff accounts: creation, administration (disable, password reset, ending
sessions) and their token pairs. Sign-in itself is app/staff/login.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.core.errors import AppError, BadRequest, NotFound
from app.core.security import TokenService, hash_password
from app.models import AuthSession, Region, SessionSubject, StaffLoginAttempt, StaffUser
from app.models.enums import RegionLevel, StaffRole
from app.staff import passwords, repository
from app.staff.exceptions import (
    CannotChangeOwnAccount,
    DepartmentNotFound,
    UnitNotFound,
    UsernameTaken,
)
from app.staff.schemas import StaffCreate, StaffUpdate

logger = logging.getLogger("app.staff")


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
    passwords.check(
        payload.password,
        context=[
            payload.username,
            payload.display_name,
            payload.phone,
            *(await repository.context_names(session, _draft(payload, unit_id))),
        ],
    )
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
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def list_staff(
    session: AsyncSession, *, unit_id: int | None, limit: int, offset: int
) -> Sequence[StaffUser]:
    stmt = select(StaffUser).order_by(StaffUser.id).limit(limit).offset(offset)
    if unit_id is not None:
        stmt = stmt.where(StaffUser.unit_id == unit_id)
    return (await session.execute(stmt)).scalars().all()


def _draft(payload: StaffCreate, unit_id: int | None) -> StaffUser:
    """An unsaved account, only to look up the names tied to it."""
    return StaffUser(
        unit_id=unit_id, department_code=payload.department_code, region_code=payload.region_code
    )


async def get_staff(session: AsyncSession, staff_id: int) -> StaffUser:
    user = await session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("工作人员账号不存在")
    return user


async def update_staff(
    session: AsyncSession, admin: StaffUser, staff_id: int, payload: StaffUpdate, *, now: datetime
) -> StaffUser:
    """An admin's change. Disabling an account or resetting its password ends
    every session it has (token families and console sessions)."""
    user = await get_staff(session, staff_id)
    if user.id == admin.id and payload.active is False:
        raise CannotChangeOwnAccount("不能停用自己的账号")
    if payload.display_name is not None:
        user.display_name = payload.display_name
    if payload.phone is not None:
        user.phone = payload.phone
    if payload.password is not None:
        passwords.check(
            payload.password,
            context=[
                user.username,
                user.display_name,
                user.phone,
                *(await repository.context_names(session, user)),
            ],
        )
        user.password_hash = await asyncio.to_thread(hash_password, payload.password)
        await revoke_sessions(session, user.id, reason="password", now=now)
    if payload.active is not None and payload.active != user.active:
        user.active = payload.active
        if not payload.active:
            await revoke_sessions(session, user.id, reason="disabled", now=now)
    await session.flush()
    logger.info(
        "staff account changed",
        extra={
            "staff_id": user.id,
            "by": admin.id,
            "fields": sorted(f for f in payload.model_fields_set if f != "password")
            + (["password"] if payload.password is not None else []),
        },
    )
    return user


async def revoke_sessions(
    session: AsyncSession, staff_id: int, *, reason: str, now: datetime
) -> int:
    """End every session of the account; its tokens stop at their next request."""
    return await sessions.revoke_all(
        session, subject_kind=SessionSubject.staff, subject_id=staff_id, reason=reason, now=now
    )


async def live_sessions(
    session: AsyncSession, staff_id: int, *, now: datetime
) -> Sequence[AuthSession]:
    await get_staff(session, staff_id)
    return await sessions.list_live(
        session, subject_kind=SessionSubject.staff, subject_id=staff_id, now=now
    )


async def login_attempts(
    session: AsyncSession, staff_id: int, *, failed_only: bool, limit: int
) -> Sequence[StaffLoginAttempt]:
    await get_staff(session, staff_id)
    return await repository.login_attempts(session, staff_id, failed_only=failed_only, limit=limit)


def _claims(user: StaffUser) -> dict[str, Any]:
    return {"role": user.role.value, "unit_id": user.unit_id}


async def sign_in(
    session: AsyncSession, tokens: TokenService, user: StaffUser, *, now: datetime
) -> sessions.TokenPair:
    """A new session (refresh-token family) for an authenticated staff member."""
    return await sessions.sign_in(
        session,
        tokens,
        subject_kind=SessionSubject.staff,
        subject_id=user.id,
        now=now,
        **_claims(user),
    )


async def refresh(
    session: AsyncSession, tokens: TokenService, refresh_token: str, *, now: datetime
) -> sessions.TokenPair | AppError:
    """Rotate the refresh token (it stops working); reuse revokes the family.

    Returned, not raised, so a revocation for reuse is committed.
    """
    rotation = await sessions.rotate(
        session, tokens, refresh_token, subject_kind=SessionSubject.staff, now=now
    )
    if rotation.error is not None or rotation.session is None:
        return rotation.error or sessions.expired()
    user = await session.get(StaffUser, rotation.session.subject_id)
    if user is None or not user.active:
        await sessions.revoke(session, rotation.session.id, reason="disabled", now=now)
        return sessions.expired()
    return sessions.issue_pair(tokens, rotation.session, now=now, **_claims(user))
