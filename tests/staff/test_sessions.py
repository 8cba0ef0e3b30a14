"""Staff sessions: refresh tokens rotate, reuse revokes the family, logout,
and an admin ends sessions (directly, by disabling, by a password reset)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.models import AuthSession, LoginOutcome, SessionKind, SessionSubject, StaffLoginAttempt
from app.models.enums import StaffRole
from tests.factories import PASSWORD, make_staff
from tests.staff.helpers import FAILED, LOGIN, LOGOUT, REFRESH, bearer

pytestmark = pytest.mark.usefixtures("seeded")
ME = "/api/v1/staff/me"
USERS = "/api/v1/staff/users"


async def _login(client: AsyncClient, username: str, password: str = PASSWORD) -> Response:
    resp = await client.post(LOGIN, json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return resp


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _refresh(client: AsyncClient, token: str) -> Response:
    return await client.post(REFRESH, json={"refresh_token": token})


@pytest.fixture
async def cadre(connection: AsyncConnection) -> int:
    user = await make_staff(
        connection, "fb.sess", StaffRole.supervisor, unit_code="XZ-511702005", display_name="赵敏"
    )
    return user.id


@pytest.fixture
async def admin(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "root.sess", StaffRole.admin)
    return bearer(await _login(client, "root.sess"))


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: AsyncClient, cadre: int, clock: FixedClock
) -> None:
    first = (await _login(client, "fb.sess")).json()
    clock.advance(timedelta(minutes=5))
    second = await _refresh(client, first["refresh_token"])
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"]
    assert (await client.get(ME, headers=_auth(new["access_token"]))).status_code == 200
    # The spent token again: refused, and the whole family with it.
    replay = await _refresh(client, first["refresh_token"])
    assert replay.status_code == 401 and replay.json()["error"] == "unauthorized"
    assert (await _refresh(client, new["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=_auth(new["access_token"]))).status_code == 401
    assert (await client.get(ME, headers=_auth(first["access_token"]))).status_code == 401
    # A new login is a new family.
    bearer(await _login(client, "fb.sess"))


async def test_another_login_survives_a_reuse(client: AsyncClient, cadre: int) -> None:
    phone = (await _login(client, "fb.sess")).json()
    desk = (await _login(client, "fb.sess")).json()
    assert (await _refresh(client, phone["refresh_token"])).status_code == 200
    assert (await _refresh(client, phone["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=_auth(desk["access_token"]))).status_code == 200
    assert (await _refresh(client, desk["refresh_token"])).status_code == 200


async def test_refresh_carries_the_current_role(
    client: AsyncClient, cadre: int, admin: dict[str, str]
) -> None:
    pair = (await _login(client, "fb.sess")).json()
    renewed = (await _refresh(client, pair["refresh_token"])).json()
    me = (await client.get(ME, headers=_auth(renewed["access_token"]))).json()
    assert (me["id"], me["role"]) == (cadre, "supervisor")


async def test_logout_ends_the_session(client: AsyncClient, cadre: int) -> None:
    pair = (await _login(client, "fb.sess")).json()
    other = (await _login(client, "fb.sess")).json()
    out = await client.post(LOGOUT, headers=_auth(pair["access_token"]))
    assert out.status_code == 204
    assert (await client.get(ME, headers=_auth(pair["access_token"]))).status_code == 401
    assert (await _refresh(client, pair["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=_auth(other["access_token"]))).status_code == 200
    assert (await client.post(LOGOUT)).status_code == 401


@pytest.mark.parametrize(
    "token",
    ["x" * 20, "a.b.c.d.e.f.g.h", "eyJhbGciOiJub25lIn0.e30."],
)
async def test_garbage_refresh_tokens_are_401(client: AsyncClient, token: str) -> None:
    resp = await _refresh(client, token)
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


@pytest.mark.parametrize("payload", [{}, {"refresh_token": "short"}, {"refresh_token": 5}])
async def test_bad_refresh_payloads_are_422(client: AsyncClient, payload: object) -> None:
    assert (await client.post(REFRESH, json=payload)).status_code == 422


async def test_access_and_resident_tokens_do_not_refresh_staff(
    app: FastAPI, client: AsyncClient, cadre: int
) -> None:
    pair = (await _login(client, "fb.sess")).json()
    assert (await _refresh(client, pair["access_token"])).status_code == 401
    resident, _ = app.state.tokens.issue(
        subject=str(cadre),
        kind="citizen",
        now=app.state.clock.now(),
        token_type="refresh",
        session_id="0" * 32,
        generation=0,
    )
    assert (await _refresh(client, resident)).status_code == 401


async def test_admin_revokes_every_session_of_an_account(
    client: AsyncClient, connection: AsyncConnection, cadre: int, admin: dict[str, str]
) -> None:
    await make_staff(connection, "fb.bystander", StaffRole.supervisor, unit_code="XZ-511702005")
    bystander = bearer(await _login(client, "fb.bystander"))
    a = (await _login(client, "fb.sess")).json()
    b = (await _login(client, "fb.sess")).json()
    listed = (await client.get(f"{USERS}/{cadre}/sessions", headers=admin)).json()
    assert [s["kind"] for s in listed] == ["api", "api"]
    resp = await client.post(f"{USERS}/{cadre}/revoke-sessions", headers=admin)
    assert resp.status_code == 200 and resp.json() == {"revoked": 2}
    for pair in (a, b):
        assert (await client.get(ME, headers=_auth(pair["access_token"]))).status_code == 401
        assert (await _refresh(client, pair["refresh_token"])).status_code == 401
    assert (await client.get(f"{USERS}/{cadre}/sessions", headers=admin)).json() == []
    assert (await client.get(ME, headers=bystander)).status_code == 200
    assert (await client.get(ME, headers=admin)).status_code == 200
    bearer(await _login(client, "fb.sess"))  # the account itself stays usable


async def test_disabling_ends_sessions_and_login_answers_alike(
    client: AsyncClient, cadre: int, admin: dict[str, str]
) -> None:
    pair = (await _login(client, "fb.sess")).json()
    off = await client.patch(f"{USERS}/{cadre}", headers=admin, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert (await client.get(ME, headers=_auth(pair["access_token"]))).status_code == 401
    assert (await _refresh(client, pair["refresh_token"])).status_code == 401
    denied = await client.post(LOGIN, json={"username": "fb.sess", "password": PASSWORD})
    assert denied.status_code == 401 and denied.json() == FAILED
    on = await client.patch(f"{USERS}/{cadre}", headers=admin, json={"active": True})
    assert on.json()["active"] is True
    bearer(await _login(client, "fb.sess"))


async def test_password_reset_ends_sessions_and_checks_strength(
    client: AsyncClient, cadre: int, admin: dict[str, str]
) -> None:
    pair = (await _login(client, "fb.sess")).json()
    for weak in ("Password1", "Passw0rd", "Abcdefg1", "Zhaomin#2026", "Fb.sess2026"):
        resp = await client.patch(f"{USERS}/{cadre}", headers=admin, json={"password": weak})
        assert resp.status_code == 422, weak
        assert resp.json()["error"] == "weak_password" and "密码" in resp.json()["detail"]
    assert (await client.get(ME, headers=_auth(pair["access_token"]))).status_code == 200
    reset = await client.patch(
        f"{USERS}/{cadre}", headers=admin, json={"password": "Quiet-River-Lantern-84"}
    )
    assert reset.status_code == 200
    assert (await client.get(ME, headers=_auth(pair["access_token"]))).status_code == 401
    old = await client.post(LOGIN, json={"username": "fb.sess", "password": PASSWORD})
    assert old.status_code == 401
    bearer(await _login(client, "fb.sess", "Quiet-River-Lantern-84"))


async def test_admin_edits_name_and_phone(
    client: AsyncClient, cadre: int, admin: dict[str, str]
) -> None:
    resp = await client.patch(
        f"{USERS}/{cadre}", headers=admin, json={"display_name": "赵敏敏", "phone": "13900002222"}
    )
    assert resp.status_code == 200 and resp.json()["display_name"] == "赵敏敏"
    got = (await client.get(f"{USERS}/{cadre}", headers=admin)).json()
    assert got["display_name"] == "赵敏敏"


async def test_admin_cannot_disable_themselves(
    client: AsyncClient, connection: AsyncConnection, admin: dict[str, str]
) -> None:
    me = (await client.get(ME, headers=admin)).json()
    resp = await client.patch(f"{USERS}/{me['id']}", headers=admin, json={"active": False})
    assert resp.status_code == 409 and resp.json()["error"] == "own_account"
    assert (await client.get(ME, headers=admin)).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/{id}", {}, 422),
        ("/{id}", {"active": None}, 422),
        ("/{id}", {"active": "yes please"}, 422),
        ("/{id}", {"active": False, "role": "admin"}, 422),
        ("/{id}", {"password": "short"}, 422),
        ("/{id}", {"phone": "12345"}, 422),
        ("/0", {"active": False}, 422),
        ("/-1", {"active": False}, 422),
        (f"/{2**70}", {"active": False}, 422),
        (f"/{2**31}", {"active": False}, 422),
        ("/abc", {"active": False}, 422),
        ("/999999", {"active": False}, 404),
    ],
)
async def test_bad_account_changes(
    client: AsyncClient,
    cadre: int,
    admin: dict[str, str],
    path: str,
    body: dict[str, object],
    status: int,
) -> None:
    resp = await client.patch(USERS + path.format(id=cadre), headers=admin, json=body)
    assert resp.status_code == status, resp.text


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/revoke-sessions"),
        ("GET", "/sessions"),
        ("GET", "/login-attempts"),
    ],
)
@pytest.mark.parametrize("staff_id", [2**70, 0, 999999])
async def test_account_routes_refuse_bad_and_missing_ids(
    client: AsyncClient, admin: dict[str, str], method: str, suffix: str, staff_id: int
) -> None:
    kwargs: dict[str, object] = {"json": {"active": True}} if method == "PATCH" else {}
    resp = await client.request(method, f"{USERS}/{staff_id}{suffix}", headers=admin, **kwargs)  # type: ignore[arg-type]
    assert resp.status_code == (404 if staff_id == 999999 else 422), resp.text


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/revoke-sessions"),
        ("GET", "/sessions"),
        ("GET", "/login-attempts"),
    ],
)
async def test_only_admins_manage_other_accounts(
    client: AsyncClient,
    connection: AsyncConnection,
    cadre: int,
    method: str,
    suffix: str,
) -> None:
    await make_staff(connection, "fb.peer", StaffRole.leader, unit_code="XZ-511702005")
    peer = bearer(await _login(client, "fb.peer"))
    own = bearer(await _login(client, "fb.sess"))
    kwargs: dict[str, object] = {"json": {"active": False}} if method == "PATCH" else {}
    url = f"{USERS}/{cadre}{suffix}"
    for headers in (peer, own):  # another cadre, and the account itself
        resp = await client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert resp.status_code == 403, resp.text
    assert (await client.request(method, url, **kwargs)).status_code == 401  # type: ignore[arg-type]
    assert (await client.get(ME, headers=own)).status_code == 200  # nothing was revoked


async def test_the_worker_purges_ended_sessions_and_old_audit_rows(
    app: FastAPI, session: AsyncSession, clock: FixedClock, cadre: int
) -> None:
    from app.auth import sessions
    from app.staff import login as staff_login

    now = clock.now()
    day = timedelta(days=1)
    kinds = {"live": now + day, "expired": now - 40 * day, "revoked": now + day}
    for name, expires in kinds.items():
        row = await sessions.start(
            session,
            subject_kind=SessionSubject.staff,
            subject_id=cadre,
            kind=SessionKind.api,
            now=now - 50 * day,
            expires_at=expires,
            session_id=name.ljust(32, "0").encode().hex()[:32],
        )
        if name == "revoked":
            await sessions.revoke(session, row.id, reason="admin", now=now - 31 * day)
    session.add_all(
        StaffLoginAttempt(at=at, staff_id=cadre, ip="192.0.2.9", outcome=LoginOutcome.success)
        for at in (now - 181 * day, now - 179 * day)
    )
    await session.flush()
    # (Live-app tests elsewhere commit rows of their own: count only this account's.)
    assert await sessions.purge(session, now=now) >= 1
    assert await staff_login.purge(session, app.state.settings, now=now) >= 1
    left = (
        await session.execute(
            select(AuthSession.id).where(
                AuthSession.subject_kind == SessionSubject.staff, AuthSession.subject_id == cadre
            )
        )
    ).scalars()
    # The revoked one goes once its end has passed too (purge reads expires_at only).
    assert sorted(bytes.fromhex(s).decode().rstrip("0") for s in left) == ["live", "revoked"]
    kept = (
        await session.execute(
            select(StaffLoginAttempt.at).where(StaffLoginAttempt.staff_id == cadre)
        )
    ).scalars()
    assert list(kept) == [now - 179 * day]
