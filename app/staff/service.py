"""Staff accounts. Login, lockout and the HTTP endpoints come with the workflow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import hash_password
from app.models import StaffUser
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
    user = StaffUser(
        username=payload.username,
        password_hash=hash_password(payload.password),
        display_name=payload.display_name,
        role=payload.role,
        unit_id=unit_id,
        department_code=payload.department_code,
        phone=payload.phone,
        active=True,
        failed_login_count=0,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user
