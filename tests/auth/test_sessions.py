"""Residents' sessions: refresh tokens rotate, reuse revokes the family,
logout ends the session, and per-IP limits believe only trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.factories import PASSWORD, make_staff

pytestmark = pytest.mark.usefixtures("seeded")
LOGIN = "/api/v1/auth/wechat-login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"
TICKETS = "/api/v1/media/upload-tickets"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _refresh(client: AsyncClient, token: str) -> Response:
    return await client.post(REFRESH, json={"refresh_token": token})


async def test_refresh_rotates_and_reuse_revokes_the_family(client: AsyncClient) -> None:
    first = (await client.post(LOGIN, json={"code": "ok-rotate"})).json()
    second = await _refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    new = second.json()
    assert new["citizen"]["id"] == first["citizen"]["id"]
    assert (await client.get(ME, headers=_auth(new["access_token"]))).status_code == 200
    replay = await _refresh(client, first["refresh_token"])
    assert replay.status_code == 401 and replay.json()["error"] == "unauthorized"
    assert (await _refresh(client, new["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=_auth(new["access_token"]))).status_code == 401
    again = (await client.post(LOGIN, json={"code": "ok-rotate"})).json()
    assert (await client.get(ME, headers=_auth(again["access_token"]))).status_code == 200


async def test_logout_ends_only_this_session(client: AsyncClient) -> None:
    phone = (await client.post(LOGIN, json={"code": "ok-out"})).json()
    tablet = (await client.post(LOGIN, json={"code": "ok-out"})).json()
    out = await client.post("/api/v1/auth/logout", headers=_auth(phone["access_token"]))
    assert out.status_code == 204
    assert (await client.get(ME, headers=_auth(phone["access_token"]))).status_code == 401
    assert (await _refresh(client, phone["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=_auth(tablet["access_token"]))).status_code == 200
    assert (await client.post("/api/v1/auth/logout")).status_code == 401


async def test_staff_refresh_tokens_do_not_refresh_residents(
    app: FastAPI, client: AsyncClient
) -> None:
    body = (await client.post(LOGIN, json={"code": "ok-kind"})).json()
    staff_like, _ = app.state.tokens.issue(
        subject=str(body["citizen"]["id"]),
        kind="staff",
        now=app.state.clock.now(),
        token_type="refresh",
        session_id="0" * 32,
        generation=0,
    )
    assert (await _refresh(client, staff_like)).status_code == 401
    legacy, _ = app.state.tokens.issue(
        subject=str(body["citizen"]["id"]),
        kind="citizen",
        now=app.state.clock.now(),
        token_type="refresh",
    )
    assert (await _refresh(client, legacy)).status_code == 401


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    app: FastAPI, client: AsyncClient
) -> None:
    """A rotating X-Forwarded-For from an untrusted peer buys nothing."""
    statuses = [
        (
            await client.post(
                LOGIN, json={"code": f"ok-x{i}"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}
            )
        ).status_code
        for i in range(31)
    ]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    # Behind a trusted proxy, the forwarded address is the client, counted on its own.
    app.state.settings = app.state.settings.model_copy(
        update={"trusted_proxies": [ip_network("127.0.0.1/32")]}
    )
    fresh = await client.post(
        LOGIN, json={"code": "ok-y"}, headers={"X-Forwarded-For": "203.0.113.5"}
    )
    assert fresh.status_code == 200
    spoofed = await client.post(
        LOGIN, json={"code": "ok-z"}, headers={"X-Forwarded-For": "not-an-address"}
    )
    assert spoofed.status_code == 429  # garbage falls back to the proxy's own address


async def test_uploads_refuse_tokens_of_ended_sessions(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    """Media accepts resident and staff tokens: both checked like everywhere else."""
    ticket = {"kind": "image", "content_type": "image/jpeg", "size": 1000}
    resident = (await client.post(LOGIN, json={"code": "ok-upload"})).json()["access_token"]
    await make_staff(connection, "fb.upload", StaffRole.supervisor, unit_code="XZ-511702005")
    staff = (
        await client.post(
            "/api/v1/staff/auth/login", json={"username": "fb.upload", "password": PASSWORD}
        )
    ).json()["access_token"]
    for token, logout in ((resident, "/api/v1/auth/logout"), (staff, "/api/v1/staff/auth/logout")):
        before = await client.post(TICKETS, headers=_auth(token), json=ticket)
        assert before.status_code == 201, before.text
        assert (await client.post(logout, headers=_auth(token))).status_code == 204
        after = await client.post(TICKETS, headers=_auth(token), json=ticket)
        assert after.status_code == 401
