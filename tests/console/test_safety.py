"""Sign-in and safety of the console, in-process on SQLite and PostgreSQL:
cookie flags, CSRF, headers, uniform login failures, session ends."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.console.helpers import csrf_of, sign_in, signed_in
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

SESSION = "ydt_console"


def cookie_header(resp_headers: list[str], name: str) -> str:
    found = [h for h in resp_headers if h.startswith(f"{name}=")]
    assert found, resp_headers
    return found[-1]


async def test_sign_in_sets_a_strict_httponly_session_cookie(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    resp = await sign_in(client, "c.sup")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/queue"
    cookie = cookie_header(resp.headers.get_list("set-cookie"), SESSION)
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http here; https below
    assert "max-age" not in flags and "expires" not in flags  # ends with the browser
    # The token is random and not the user's id, name or anything in a URL.
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40 and "c.sup" not in token


async def test_over_https_the_cookie_is_secure_and_host_prefixed(
    app: object, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    transport = ASGITransport(app=app)  # type: ignore[arg-type]
    async with AsyncClient(transport=transport, base_url="https://testserver") as https:
        resp = await sign_in(https, "c.sup")
        assert resp.status_code == 303
        cookie = cookie_header(resp.headers.get_list("set-cookie"), "__Host-ydt_console")
        assert "secure" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert (await https.get("/console/queue")).status_code == 200


async def test_every_login_failure_looks_the_same(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    off = await make_staff(connection, "c.off", StaffRole.supervisor, unit_code=TOWN_UNIT)
    admin = await make_staff(connection, "c.admin", StaffRole.admin)
    h = await login(client, "c.admin")
    assert (
        await client.patch(f"/api/v1/staff/users/{off.id}", headers=h, json={"active": False})
    ).status_code == 200
    assert admin.id
    answers = []
    for username, password in (
        ("nobody.here", "Whatever#2026"),  # unknown
        ("c.sup", "Wrong#Password1"),  # wrong password
        ("c.off", "Test#Pass2026"),  # right password, disabled account
    ):
        resp = await sign_in(client, username, password)
        body = resp.text.replace(f'value="{username}"', 'value=""')
        cookies = resp.headers.get("set-cookie", "")
        answers.append((resp.status_code, body, f"{SESSION}=" in cookies))
    assert {a[0] for a in answers} == {401}
    assert len({a[1] for a in answers}) == 1
    assert not any(a[2] for a in answers)
    assert "用户名或密码错误" in answers[0][1]


async def test_login_without_or_with_a_wrong_csrf_token_is_403(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await client.get("/console/login")
    form = {"username": "c.sup", "password": "Test#Pass2026"}
    assert (await client.post("/console/login", data=form)).status_code == 403
    bad = {**form, "csrf_token": "0" * 64}
    assert (await client.post("/console/login", data=bad)).status_code == 403
    client.cookies.clear()  # no pre-session cookie at all
    assert (await client.post("/console/login", data=bad)).status_code == 403


async def test_pages_send_a_strict_csp_and_deny_framing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    pages = ["/console/login"]
    await signed_in(client, "c.sup")
    pages += ["/console/queue", "/console/inbox", "/console/intake", "/console/nothing-here"]
    for path in pages:
        resp = await client.get(path)
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        script = re.search(r"script-src ([^;]+)", csp)
        style = re.search(r"style-src ([^;]+)", csp)
        assert script and script.group(1) == "'self'", csp
        assert style and style.group(1) == "'self'", csp
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["x-content-type-options"] == "nosniff"
        # No inline script or style anywhere in the markup.
        assert not re.search(r"<script(?![^>]*\bsrc=)", resp.text), path
        assert " style=" not in resp.text and "<style" not in resp.text, path
        assert not re.search(r"\son[a-z]+=", resp.text), path  # no inline handlers


async def test_a_state_changing_form_without_csrf_is_403_and_changes_nothing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    case = await file_case(client, await citizen(client, "r1"))
    token = await signed_in(client, "c.sup")
    url = f"/console/complaints/{case['id']}/actions/accept"
    body = {"expected_version": "1", "note": "受理"}
    assert (await client.post(url, data=body)).status_code == 403
    assert (await client.post(url, data={**body, "csrf_token": "x" * 64})).status_code == 403
    # The right token from another site's page (the browser says so) is refused too.
    cross = await client.post(
        url, data={**body, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    page = await client.get(f"/console/complaints/{case['id']}")
    assert "待受理" in page.text
    ok = await client.post(url, data={**body, "csrf_token": token})
    assert ok.status_code == 303
    assert "已受理" in (await client.get(f"/console/complaints/{case['id']}")).text


async def test_not_signed_in_goes_to_the_login_page_and_back(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    resp = await client.get("/console/inbox")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/login?next=/console/inbox"
    page = await client.get(resp.headers["location"])
    signed = await client.post(
        "/console/login",
        data={
            "username": "c.sup",
            "password": "Test#Pass2026",
            "csrf_token": csrf_of(page.text),
            "next": "/console/inbox",
        },
    )
    assert signed.headers["location"] == "/console/inbox"
    # Only console paths are followed after sign-in.
    page = await client.get("/console/login?next=https://evil.example/")
    assert page.status_code == 303 and page.headers["location"] == "/console/"


async def test_logout_ends_the_session_on_the_server(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    token = await signed_in(client, "c.sup")
    saved = client.cookies.get(SESSION)
    assert (await client.post("/console/logout", data={"csrf_token": token})).status_code == 303
    client.cookies.set(SESSION, saved or "")  # a copied cookie no longer works
    assert (await client.get("/console/queue")).status_code == 303


async def test_revoking_sessions_or_disabling_the_account_ends_browser_sessions(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    sup = await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "c.admin", StaffRole.admin)
    h = await login(client, "c.admin")
    await signed_in(client, "c.sup")
    revoked = await client.post(f"/api/v1/staff/users/{sup.id}/revoke-sessions", headers=h)
    assert revoked.status_code == 200, revoked.text
    assert (await client.get("/console/queue")).status_code == 303

    await signed_in(client, "c.sup")
    patched = await client.patch(f"/api/v1/staff/users/{sup.id}", headers=h, json={"active": False})
    assert patched.status_code == 200
    assert (await client.get("/console/queue")).status_code == 303


async def test_sessions_end_after_idle_time_and_at_the_absolute_limit(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    start = clock.now()
    await signed_in(client, "c.sup")
    # Active use keeps it alive, 25 minutes at a time (idle limit 30)…
    for step in range(1, 5):
        clock.set(start + timedelta(minutes=25 * step))
        assert (await client.get("/console/inbox")).status_code == 200
    # …but 31 idle minutes end it.
    clock.set(start + timedelta(minutes=100 + 31))
    assert (await client.get("/console/inbox")).status_code == 303

    start = clock.now()
    await signed_in(client, "c.sup")
    for step in range(1, 30):  # 12 hours of steady use
        clock.set(start + timedelta(minutes=25 * step))
        if step * 25 >= 12 * 60:
            assert (await client.get("/console/inbox")).status_code == 303
            break
        assert (await client.get("/console/inbox")).status_code == 200


async def test_the_larger_text_switch_is_remembered(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    page = await client.get("/console/login")
    assert 'class="text-large"' not in page.text
    resp = await client.post(
        "/console/prefs/text-size",
        data={"size": "large", "next": "/console/login", "csrf_token": csrf_of(page.text)},
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/console/login"
    assert 'class="text-large"' in (await client.get("/console/login")).text
    assert (
        await client.post("/console/prefs/text-size", data={"size": "large"})
    ).status_code == 403
