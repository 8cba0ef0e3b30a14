"""Small builders for tests: staff accounts and their tokens."""

from __future__ import annotations

from datetime import UTC, datetime

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import StaffUser, SupervisionUnit
from app.models.enums import StaffRole
from app.staff import service as staff_service
from app.staff.schemas import StaffCreate

PASSWORD = "Test#Pass2026"


async def make_staff(
    connection: AsyncConnection,
    username: str,
    role: StaffRole,
    *,
    unit_code: str | None = None,
    department_code: str | None = None,
    region_code: str | None = None,
    display_name: str | None = None,
) -> StaffUser:
    async with AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    ) as s:
        user = await staff_service.create_staff(
            s,
            StaffCreate(
                username=username,
                password=PASSWORD,
                role=role,
                display_name=display_name or username,
                unit_code=unit_code,
                department_code=department_code,
                region_code=region_code,
            ),
            now=datetime.now(UTC),
        )
        await s.commit()
        return user


async def unit_id(connection: AsyncConnection, code: str) -> int:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        return int(
            (
                await s.execute(select(SupervisionUnit.id).where(SupervisionUnit.code == code))
            ).scalar_one()
        )


async def login(client: AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    resp = await client.post(
        "/api/v1/staff/auth/login", json={"username": username, "password": password}
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}
