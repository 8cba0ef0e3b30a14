"""A console form holds nothing of anyone else's while its body arrives.

A cadre's action with an evidence photo, sent over a township's line, used to
arrive inside the request's writer session: its dependencies (the browser
session's look-up) had opened it before the page read its form. On SQLite
that held the process's writer lock and the database's write lock, so every
resident's filing waited for the photo's upload; on PostgreSQL it held a
pooled connection inside a transaction. The form's body is now read before
the writer session begins (app/core/forms.py, ``db.get_session``).

The first test stops the body half-way, looks at what is held, files a
resident's case meanwhile, then lets the rest of the body arrive. The others
probe both locks while an evidence photo is checked (decoded, its EXIF
stripped): done before the action's or the intake's writer session begins
(app/console/evidence.py), and taken back when the write is refused or the
form was a reload.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.console import evidence
from app.console.case import STALE
from app.core.storage.local import LocalMediaStore
from app.media.service import Staged
from app.models import Media, SupervisionUnit
from app.models.enums import MediaKind, StaffRole
from tests import mediafiles
from tests.console.helpers import intake_form, signed_in
from tests.media.test_write_lock import probing
from tests.workflow.live import UNIT, VILLAGE, live, new_case, staff_account
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


async def _signed_in_as(live: FastAPI, http: AsyncClient, role: StaffRole) -> str:
    return await signed_in(http, await staff_account(live, role))


async def _media_rows(live: FastAPI) -> int:
    async with live.state.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Media)) or 0)


def _objects(store: LocalMediaStore) -> list[Path]:
    return sorted(p for p in store.path_for("media").rglob("*") if p.is_file())


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_an_actions_evidence_is_checked_holding_no_lock(
    live: FastAPI, http: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photo is decoded and cleaned (EXIF stripped) before the action's
    writer session begins, and its row is written with the action."""
    cid = (await new_case(http))["id"]
    token = await _signed_in_as(live, http, StaffRole.supervisor)
    found: list[tuple[bool, bool]] = []
    probing(live, monkeypatch, "clean", found)
    done = await http.post(
        f"/console/complaints/{cid}/actions/accept",
        data={"csrf_token": token, "expected_version": "1", "note": "受理"},
        files={"evidence": ("现场.png", mediafiles.png(), "image/png")},
    )
    assert done.status_code == 303, done.text[:2000]
    assert found == [(True, True)]
    async with live.state.sessionmaker() as s:
        attached = await s.scalar(
            select(func.count()).select_from(Media).where(Media.attached_to == f"complaint:{cid}")
        )
    assert attached == 1


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_a_refused_action_takes_its_evidence_back(
    live: FastAPI, http: AsyncClient, local_store: LocalMediaStore
) -> None:
    """Stored before the action was refused (someone acted first): its
    objects are removed and no row of it remains."""
    cid = (await new_case(http))["id"]
    token = await _signed_in_as(live, http, StaffRole.supervisor)
    first = await http.post(
        f"/console/complaints/{cid}/actions/accept",
        data={"csrf_token": token, "expected_version": "1", "note": "受理"},
    )
    assert first.status_code == 303
    objects, rows = _objects(local_store), await _media_rows(live)
    stale = await http.post(
        f"/console/complaints/{cid}/actions/accept",
        data={"csrf_token": token, "expected_version": "1", "note": "我也来受理"},
        files={"evidence": ("现场.png", mediafiles.png(), "image/png")},
    )
    assert stale.status_code == 409 and STALE in stale.text
    assert _objects(local_store) == objects
    assert await _media_rows(live) == rows


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_an_intakes_evidence_is_checked_holding_no_lock_and_a_reload_stores_nothing(
    live: FastAPI,
    http: AsyncClient,
    local_store: LocalMediaStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = await _signed_in_as(live, http, StaffRole.agent)
    page = await http.get("/console/intake")
    form_id = re.search(r'name="form_id" value="([^"]+)"', page.text)
    assert page.status_code == 200 and form_id
    data = intake_form(token, form_id.group(1), VILLAGE)
    files = {"evidence": ("来信.png", mediafiles.png(), "image/png")}
    found: list[tuple[bool, bool]] = []
    probing(live, monkeypatch, "clean", found)
    done = await http.post("/console/intake", data=data, files=files)
    assert done.status_code == 201, done.text[:2000]
    assert found == [(True, True)]
    objects, rows = _objects(local_store), await _media_rows(live)
    assert objects
    # A reload of the same form: the first receipt, and what it stored again
    # is taken back, once the writer session is over.
    discarded: list[tuple[bool, bool]] = []
    discard = evidence.discard

    async def discard_and_probe(staged: list[Staged]) -> None:
        discarded.append(await asyncio.to_thread(locks_free, live))
        await discard(staged)

    monkeypatch.setattr(evidence, "discard", discard_and_probe)
    again = await http.post("/console/intake", data=data, files=files)
    assert again.status_code == 303 and again.headers["location"].endswith("/receipt")
    assert discarded == [(True, True)]
    assert _objects(local_store) == objects
    assert await _media_rows(live) == rows


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_an_unsupported_evidence_file_is_the_case_page_again(
    live: FastAPI, http: AsyncClient, local_store: LocalMediaStore
) -> None:
    """Refused while it is checked, before any session: the case page with
    the reason and what was typed, the case unchanged, nothing stored."""
    cid = (await new_case(http))["id"]
    token = await _signed_in_as(live, http, StaffRole.supervisor)
    objects, rows = _objects(local_store), await _media_rows(live)
    refused = await http.post(
        f"/console/complaints/{cid}/actions/accept",
        data={"csrf_token": token, "expected_version": "1", "note": "附上材料受理"},
        files={"evidence": ("说明.txt", "不是图片".encode(), "text/plain")},
    )
    assert refused.status_code == 415, refused.text[:2000]
    assert "说明.txt" in refused.text and "附上材料受理" in refused.text
    assert _objects(local_store) == objects
    assert await _media_rows(live) == rows
    page = await http.get(f"/console/complaints/{cid}")
    assert 'name="expected_version" value="1"' in page.text  # not accepted


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_a_hostile_form_body_is_refused_before_anything_is_written(
    live: FastAPI, http: AsyncClient, local_store: LocalMediaStore
) -> None:
    """The body is now read by the session's dependency, before the route:
    broken framing, too many files and an oversized body are each a clear
    4xx there, signed in or not, and the case, rows and objects stay as they
    were."""
    cid = (await new_case(http))["id"]
    token = await _signed_in_as(live, http, StaffRole.supervisor)
    path = f"/console/complaints/{cid}/actions/accept"
    objects, rows = _objects(local_store), await _media_rows(live)
    broken = await http.post(
        path,
        content=b'--zzz\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nx',
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    many = await http.post(
        path,
        data={"csrf_token": token, "expected_version": "1"},
        files=[("evidence", (f"{i}.png", mediafiles.png(), "image/png")) for i in range(14)],
    )
    huge = await http.post(
        path,
        content=b"csrf_token=" + b"x" * (live.state.settings.max_body_bytes + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    http.cookies.clear()
    stranger = await http.post(
        path,
        content=b"--zzz\r\n",
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    # Cut-off framing is refused by the parser or, read as far as it goes,
    # by the CSRF check; never a 5xx.
    assert broken.status_code in (400, 403) and stranger.status_code < 500
    assert (many.status_code, huge.status_code) == (400, 413)
    assert _objects(local_store) == objects
    assert await _media_rows(live) == rows
    await signed_in(http, await staff_account(live))
    page = await http.get(f"/console/complaints/{cid}")
    assert 'name="expected_version" value="1"' in page.text  # not accepted


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_another_units_action_with_evidence_is_404_and_leaves_nothing(
    live: FastAPI, http: AsyncClient, local_store: LocalMediaStore
) -> None:
    """The evidence is checked before the case's scope is: a cadre of another
    unit gets the 404 of a missing case, and what the photo wrote is gone."""
    cid = (await new_case(http))["id"]
    async with live.state.sessionmaker() as s:
        other = await s.scalar(
            select(SupervisionUnit.code).where(SupervisionUnit.code != UNIT).limit(1)
        )
    assert other is not None
    token = await signed_in(http, await staff_account(live, StaffRole.supervisor, other))
    objects, rows = _objects(local_store), await _media_rows(live)
    refused = await http.post(
        f"/console/complaints/{cid}/actions/accept",
        data={"csrf_token": token, "expected_version": "1", "note": "受理"},
        files={"evidence": ("现场.png", mediafiles.png(), "image/png")},
    )
    assert refused.status_code == 404
    assert _objects(local_store) == objects
    assert await _media_rows(live) == rows
