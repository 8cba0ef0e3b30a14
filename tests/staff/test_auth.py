from __future__ import annotations

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.factories import PASSWORD, login, make_staff

pytestmark = pytest.mark.usefixtures("seeded")


async def test_login_and_me(client: AsyncClient, connection: AsyncConnection) -> None:
    await make_staff(
        connection, "fb.zhang", StaffRole.supervisor, unit_code="XZ-511702005", display_name="张欣"
    )
    headers = await login(client, "fb.zhang")
    me = (await client.get("/api/v1/staff/me", headers=headers)).json()
    assert (me["username"], me["role"], me["unit_code"], me["unit_name"]) == (
        "fb.zhang",
        "supervisor",
        "XZ-511702005",
        "凤北街道纪工委",
    )


async def test_wrong_password_and_unknown_user_look_the_same(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "fb.li", StaffRole.supervisor, unit_code="XZ-511702005")
    wrong = await client.post(
        "/api/v1/staff/auth/login", json={"username": "fb.li", "password": "nope"}
    )
    ghost = await client.post(
        "/api/v1/staff/auth/login", json={"username": "ghost", "password": "nope"}
    )
    assert wrong.status_code == ghost.status_code == 401
    assert wrong.json() == ghost.json() == {"error": "unauthorized", "detail": "用户名或密码错误"}


async def test_lockout_after_five_failures_then_unlocks(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    await make_staff(connection, "fb.wang", StaffRole.leader, unit_code="XZ-511702005")
    for _ in range(5):
        r = await client.post(
            "/api/v1/staff/auth/login", json={"username": "fb.wang", "password": "bad"}
        )
        assert r.status_code == 401
    locked = await client.post(
        "/api/v1/staff/auth/login", json={"username": "fb.wang", "password": PASSWORD}
    )
    assert locked.status_code == 403 and locked.json()["error"] == "account_locked"
    assert int(locked.headers["retry-after"]) > 0
    clock.advance(timedelta(minutes=16))
    assert (
        await client.post(
            "/api/v1/staff/auth/login", json={"username": "fb.wang", "password": PASSWORD}
        )
    ).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic Zm9vOmJhcg=="}],
)
async def test_me_needs_a_valid_staff_token(client: AsyncClient, headers: dict[str, str]) -> None:
    resp = await client.get("/api/v1/staff/me", headers=headers)
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


async def test_citizen_token_is_refused_on_staff_endpoints(
    client: AsyncClient, app: object
) -> None:
    token, _ = app.state.tokens.issue(subject="1", kind="citizen", now=app.state.clock.now())  # type: ignore[attr-defined]
    resp = await client.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403


@pytest.mark.parametrize("payload", [{}, {"username": "a"}, {"username": "", "password": "x"}])
async def test_bad_login_payloads_are_422(client: AsyncClient, payload: object) -> None:
    assert (await client.post("/api/v1/staff/auth/login", json=payload)).status_code == 422
