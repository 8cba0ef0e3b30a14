from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.factories import login, make_staff

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
async def admin(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "root.admin", StaffRole.admin)
    return await login(client, "root.admin")


async def test_admin_creates_and_lists_staff(client: AsyncClient, admin: dict[str, str]) -> None:
    body = {
        "username": "new.handler",
        "password": "Strong#Pass1",
        "role": "handler",
        "display_name": "新承办人",
        "department_code": "D001",
        "region_code": "511702000000",
    }
    created = await client.post("/api/v1/staff/users", headers=admin, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["region_code"] == "511702000000" and "password" not in created.json()
    listed = (await client.get("/api/v1/staff/users?limit=200", headers=admin)).json()["items"]
    assert "new.handler" in [u["username"] for u in listed]
    again = await client.post("/api/v1/staff/users", headers=admin, json=body)
    assert again.status_code == 409 and again.json()["error"] == "username_taken"
    assert (await login(client, "new.handler", "Strong#Pass1"))["Authorization"]


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"password": "short"}, 422),
        ({"password": "Password1"}, 422),
        ({"password": "Passw0rd"}, 422),
        ({"password": "Abcdefg1"}, 422),
        ({"password": "qwertyuiop123"}, 422),
        ({"password": "Yidiantong#2026"}, 422),  # the product's name
        ({"password": "jianduyidiantong"}, 422),
        ({"password": "Someone#2026"}, 422),  # the username
        ({"password": "Fengbei#2026"}, 422),  # the unit, 凤北街道纪工委, in pinyin
        ({"password": "Moumou@2026"}, 422),  # the name, 某某, in pinyin
        ({"password": "x", "extra": 1}, 422),
        ({"role": "handler", "department_code": None}, 422),
        ({"role": "supervisor", "unit_code": None}, 422),
        ({"unit_code": "XZ-000000000"}, 404),
        ({"username": "Bad Name"}, 422),
        ({"role": "root"}, 422),
    ],
)
async def test_bad_staff_accounts_are_refused(
    client: AsyncClient, admin: dict[str, str], changes: dict[str, object], status: int
) -> None:
    body: dict[str, object] = {
        "username": "someone",
        "password": "Strong#Pass1",
        "role": "supervisor",
        "display_name": "某某",
        "unit_code": "XZ-511702005",
    }
    body.update(changes)
    assert (
        await client.post("/api/v1/staff/users", headers=admin, json=body)
    ).status_code == status


async def test_only_admins_manage_staff(client: AsyncClient, connection: AsyncConnection) -> None:
    await make_staff(connection, "plain.cadre", StaffRole.supervisor, unit_code="XZ-511702005")
    h = await login(client, "plain.cadre")
    assert (await client.get("/api/v1/staff/users", headers=h)).status_code == 403


async def test_a_weak_password_is_refused_with_a_chinese_message(
    client: AsyncClient, admin: dict[str, str]
) -> None:
    body = {
        "username": "weak.one",
        "password": "Password1",
        "role": "admin",
        "display_name": "弱密码",
    }
    resp = await client.post("/api/v1/staff/users", headers=admin, json=body)
    assert resp.status_code == 422
    assert resp.json()["error"] == "weak_password" and "密码太容易被猜到" in resp.json()["detail"]
    body["password"] = "lantern quietly orbits 9"  # long and plain is fine
    assert (await client.post("/api/v1/staff/users", headers=admin, json=body)).status_code == 201


async def test_unit_filter_is_range_checked(client: AsyncClient, admin: dict[str, str]) -> None:
    for bad in (2**70, 0, -1, "x"):
        resp = await client.get(f"/api/v1/staff/users?unit_id={bad}", headers=admin)
        assert resp.status_code == 422
