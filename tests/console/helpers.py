"""Signing in to the console the way a browser does: read the form, keep the
cookies, send the CSRF token back."""

from __future__ import annotations

import re

from httpx import AsyncClient, Response

from tests.factories import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION = re.compile(r'name="expected_version" value="(\d+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: AsyncClient, username: str, password: str = PASSWORD) -> Response:
    page = await client.get("/console/login")
    assert page.status_code == 200, page.text
    return await client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
    )


async def signed_in(client: AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Sign in and return the session's CSRF token (read from a page)."""
    resp = await sign_in(client, username, password)
    assert resp.status_code == 303, resp.text
    page = await client.get("/console/inbox")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def intake_form(token: str, form_id: str, village: str) -> dict[str, str]:
    """An agent's offline intake of an elderly visitor, as the form posts it."""
    return {
        "csrf_token": token,
        "form_id": form_id,
        "channel": "agent",
        "region_code": village,
        "item_code": "0101",
        "content": "老人来访反映：村里低保评定不公开，希望核查。",
        "reporter_name": "王大爷",
        "reporter_phone": "13700002222",
    }
