from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, login, make_staff
from tests.staff.helpers import FAILED, LOGIN

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


async def test_login_returns_a_token_pair(client: AsyncClient, connection: AsyncConnection) -> None:
    await make_staff(connection, "fb.pair", StaffRole.supervisor, unit_code="XZ-511702005")
    body = (await client.post(LOGIN, json={"username": "FB.Pair ", "password": PASSWORD})).json()
    assert body["access_token"] and body["refresh_token"]
    assert body["expires_at"] < body["refresh_expires_at"]


async def test_wrong_password_and_unknown_user_look_the_same(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "fb.li", StaffRole.supervisor, unit_code="XZ-511702005")
    wrong = await client.post(LOGIN, json={"username": "fb.li", "password": "nope"})
    ghost = await client.post(LOGIN, json={"username": "ghost", "password": "nope"})
    odd = await client.post(LOGIN, json={"username": "不是用户名 1=1", "password": "nope"})
    assert wrong.status_code == ghost.status_code == odd.status_code == 401
    assert wrong.json() == ghost.json() == odd.json() == FAILED


async def test_failures_lock_nobody_out_for_good(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    """Five failures throttle this (username, address) pair for one window; the
    window then passes and the right password works again."""
    await make_staff(connection, "fb.wang", StaffRole.leader, unit_code="XZ-511702005")
    for _ in range(5):
        r = await client.post(LOGIN, json={"username": "fb.wang", "password": "bad"})
        assert r.status_code == 401
    throttled = await client.post(LOGIN, json={"username": "fb.wang", "password": PASSWORD})
    assert throttled.status_code == 401 and throttled.json() == FAILED
    assert "retry-after" not in throttled.headers  # nothing tells throttled from wrong
    clock.advance(timedelta(minutes=16))
    ok = await client.post(LOGIN, json={"username": "fb.wang", "password": PASSWORD})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic Zm9vOmJhcg=="}],
)
async def test_me_needs_a_valid_staff_token(client: AsyncClient, headers: dict[str, str]) -> None:
    resp = await client.get("/api/v1/staff/me", headers=headers)
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


async def test_citizen_token_is_refused_on_staff_endpoints(
    client: AsyncClient, app: FastAPI
) -> None:
    token, _ = app.state.tokens.issue(subject="1", kind="citizen", now=app.state.clock.now())
    resp = await client.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403


def _forged(app: FastAPI, **claims: object) -> dict[str, str]:
    now = int(app.state.clock.now().timestamp())
    payload: dict[str, object] = {
        "sub": "1",
        "knd": "staff",
        "typ": "access",
        "exp": now + 600,
        "sid": "0" * 32,
    }
    payload.update(claims)
    token = jwt.encode(payload, TEST_SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "1 OR 1=1"},
        {"sub": 2**70},
        {"sub": str(2**70)},
        {"exp": "tomorrow"},
        {"exp": 2**70},
        {"unit": 2**70},
        {"sid": "' OR 1=1 --"},
        {"sid": "0" * 32},  # well-formed, but no such session
        {"sid": None},  # a token from before sessions: no longer works
    ],
)
async def test_forged_claims_are_401_on_staff_and_resident_endpoints(
    client: AsyncClient, app: FastAPI, claims: dict[str, object]
) -> None:
    staff = await client.get("/api/v1/staff/me", headers=_forged(app, **claims))
    resident = await client.get("/api/v1/auth/me", headers=_forged(app, knd="citizen", **claims))
    assert (staff.status_code, resident.status_code) == (401, 401)
    assert staff.json()["error"] == resident.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"username": "a"},
        {"username": "", "password": "x"},
        {"username": "a", "password": "b", "extra": 1},
        {"username": "a" * 65, "password": "b"},
        {"username": "a", "password": "b" * 129},
        {"username": 5, "password": "b"},
    ],
)
async def test_bad_login_payloads_are_422(client: AsyncClient, payload: object) -> None:
    assert (await client.post(LOGIN, json=payload)).status_code == 422
