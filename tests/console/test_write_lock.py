"""A console form holds nothing of anyone else's while its body arrives.

A cadre's action with an evidence photo, sent over a township's line, used to
arrive inside the request's writer session: its dependencies (the browser
session's look-up) had opened it before the page read its form. On SQLite
that held the process's writer lock and the database's write lock, so every
resident's filing waited for the photo's upload; on PostgreSQL it held a
pooled connection inside a transaction. The form's body is now read before
the writer session begins (app/core/forms.py, ``db.get_session``).

Each test stops the body half-way, looks at what is held, files a resident's
case meanwhile, then lets the rest of the body arrive.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.models import Media
from app.models.enums import MediaKind
from tests import mediafiles
from tests.console.helpers import signed_in
from tests.workflow.live import live, new_case, staff_account
from tests.write_lock import http, locks_free

__all__ = ["http", "live"]  # the live app's fixtures, used by name

pytestmark = pytest.mark.usefixtures("seeded")


def _multipart(
    url: str, fields: dict[str, str], png: bytes
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body a browser sends for the form (built by httpx)."""
    request = httpx.Request(
        "POST", url, data=fields, files={"evidence": ("现场.png", png, "image/png")}
    )
    body = request.read()
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    return headers, body


async def _send_slowly(
    app: FastAPI,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    halfway: asyncio.Event,
    rest: asyncio.Event,
) -> dict[str, Any]:
    """The request through the app's ASGI callable, its body stopping after
    the first half until ``rest`` is set; the response's start message."""
    parts = [body[: len(body) // 2], body[len(body) // 2 :]]
    started: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        if len(parts) == 1:
            halfway.set()
            await rest.wait()
        if parts:
            chunk = parts.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(parts)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"live"), *headers],
        "client": ("10.9.8.7", 1),
        "server": ("live", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return started


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"], indirect=True)
async def test_an_evidence_upload_in_flight_holds_no_lock_and_no_connection(
    live: FastAPI, http: AsyncClient
) -> None:
    cid = (await new_case(http))["id"]
    name = await staff_account(live)
    token = await signed_in(http, name)
    path = f"/console/complaints/{cid}/actions/accept"
    headers, body = _multipart(
        f"http://live{path}",
        {"csrf_token": token, "expected_version": "1", "note": "已到现场核实，受理"},
        mediafiles.png(),
    )
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    headers.append((b"cookie", cookie.encode()))
    pool = live.state.engine.pool
    before = pool.checkedout()

    halfway, rest = asyncio.Event(), asyncio.Event()
    upload = asyncio.create_task(_send_slowly(live, path, headers, body, halfway, rest))
    try:
        await asyncio.wait_for(halfway.wait(), 10)
        # Half the body is in: nothing of anyone else's is held meanwhile.
        assert pool.checkedout() == before
        if live.state.engine.dialect.name == "sqlite":
            assert await asyncio.to_thread(locks_free, live) == (True, True)
        # A resident files meanwhile, and is not kept waiting for the upload.
        filed = await asyncio.wait_for(new_case(http), 20)
        assert filed["tracking_no"]
        assert not upload.done()
    finally:
        rest.set()
    answer = await asyncio.wait_for(upload, 30)
    # Accepted, with its evidence: the redirect back to the case.
    assert answer["status"] == 303, answer
    page = await http.get(f"/console/complaints/{cid}")
    assert page.status_code == 200 and "已受理" in page.text
    async with live.state.sessionmaker() as s:
        evidence = (
            await s.scalars(select(Media.kind).where(Media.attached_to == f"complaint:{cid}"))
        ).all()
    assert evidence == [MediaKind.image]
