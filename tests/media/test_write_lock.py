"""A resident's upload holds no write lock while its file is checked.

On the embedded default (SQLite) a writer's session holds the process's
writer lock from its start and the database's from its first statement.
An upload's check (decoding an image, probing a voice clip or a video,
cutting a poster frame, writing to storage) takes seconds for a video, and
while it held them every resident's filing waited. The file is now checked
and stored first and the row written in a short session after. Each test
probes both locks while the check runs, from the thread it runs on.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image
from sqlalchemy import delete, func, select

from app.core.storage.local import LocalMediaStore
from app.media import ingest
from app.media import service as media_service
from app.media.service import MediaNotFound
from app.models import IdempotencyRecord, Media
from tests import mediafiles
from tests.media.test_tickets import ticket
from tests.workflow.live import live, new_resident
from tests.write_lock import http, locks_free

__all__ = ["http", "live"]  # the live app's fixtures, used by name

pytestmark = [
    pytest.mark.usefixtures("seeded"),
    pytest.mark.parametrize("engine", ["sqlite"], indirect=True),
]


def probing(
    live: FastAPI, monkeypatch: pytest.MonkeyPatch, name: str, found: list[tuple[bool, bool]]
) -> None:
    """Wrap ``ingest.<name>`` (run on a worker thread while the file is
    checked): record whether the process's writer lock was free and whether
    another connection could take the database's write lock."""
    checked: Callable[..., Any] = getattr(ingest, name)

    def check_and_probe(*args: Any, **kwargs: Any) -> Any:
        found.append(locks_free(live))
        return checked(*args, **kwargs)

    monkeypatch.setattr(ingest, name, check_and_probe)


async def direct_upload(http: AsyncClient) -> tuple[dict[str, str], dict[str, Any]]:
    """A resident's image posted to its one-time key, not completed yet:
    their headers and the ticket."""
    h = await new_resident(http)
    data = mediafiles.png()
    t = (await ticket(http, h, "image", "image/png", len(data))).json()
    sent = await http.post(
        urlsplit(t["url"]).path, data=t["fields"], files={"file": ("p.png", data)}
    )
    assert sent.status_code == 204, sent.text
    return h, t


async def test_no_write_lock_while_an_uploaded_video_is_checked(
    live: FastAPI, http: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await new_resident(http)
    found: list[tuple[bool, bool]] = []
    probing(live, monkeypatch, "check_av", found)
    resp = await http.post(
        "/api/v1/media",
        headers=h,
        data={"kind": "video"},
        files={"file": ("v.mp4", mediafiles.mp4())},
    )
    assert resp.status_code == 201, resp.text
    assert found == [(True, True)]


async def test_no_write_lock_while_a_direct_upload_is_completed(
    live: FastAPI, http: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, t = await direct_upload(http)
    found: list[tuple[bool, bool]] = []
    probing(live, monkeypatch, "clean", found)
    done = await http.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
    assert done.status_code == 200 and done.json()["status"] == "ready", done.text
    assert found == [(True, True)]


async def test_a_replayed_upload_keeps_its_first_answer_and_stores_nothing_more(
    live: FastAPI, http: AsyncClient, local_store: LocalMediaStore
) -> None:
    """A retry is checked and stored again before its key is looked up; once
    the key's first answer is found, what the retry stored is removed."""
    key = f"upload-retry-{uuid.uuid4().hex}"
    h = {**await new_resident(http), "Idempotency-Key": key}
    files = {"file": ("p.png", mediafiles.png())}
    first = await http.post("/api/v1/media", headers=h, data={"kind": "image"}, files=files)
    assert first.status_code == 201, first.text
    objects = sorted(local_store.path_for("media").rglob("*"))
    again = await http.post("/api/v1/media", headers=h, data={"kind": "image"}, files=files)
    assert again.status_code == 201 and again.json() == first.json()
    assert sorted(local_store.path_for("media").rglob("*")) == objects
    async with live.state.sessionmaker() as s:
        rows = await s.scalar(
            select(func.count()).select_from(Media).where(Media.id == first.json()["id"])
        )
        keys = await s.scalar(
            select(func.count()).select_from(IdempotencyRecord).where(IdempotencyRecord.key == key)
        )
    assert (rows, keys) == (1, 1)


def _another_png(size: int) -> bytes:
    """A photo other than ``mediafiles.png()`` of the same length (the
    ticket is for that many bytes)."""
    for red in range(256):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (red, 200, 10)).save(buf, format="PNG")
        if len(buf.getvalue()) == size and buf.getvalue() != mediafiles.png():
            return buf.getvalue()
    raise AssertionError("no other PNG of that length")


async def test_a_completion_that_lost_the_race_takes_back_only_its_own_file(
    live: FastAPI, http: AsyncClient, local_store: LocalMediaStore
) -> None:
    """Two completions of one upload both check it, the second after the form
    was posted again with another photo. The second to write finds the row
    completed, answers it, and removes what it stored, at keys of its own;
    the first's file, whose digest the row records, is untouched. (With one
    key for both, the second's photo replaced the first's under the row's
    digest, and the evidence no longer matched its record.)"""
    _, t = await direct_upload(http)
    settings, now = live.state.settings, live.state.clock.now()
    copies = []
    for _ in range(2):
        async with live.state.read_sessionmaker() as s:
            media = await s.get(Media, t["media_id"])
            assert media is not None
            s.expunge(media)
            copies.append(media)
    first = await media_service.stage_completion(local_store, settings, copies[0], now=now)
    again = await http.post(
        urlsplit(t["url"]).path,
        data=t["fields"],
        files={"file": ("q.png", _another_png(len(mediafiles.png())))},
    )
    assert again.status_code == 204, again.text
    second = await media_service.stage_completion(local_store, settings, copies[1], now=now)
    assert first is not None and second is not None
    assert not set(first.writes.keys) & set(second.writes.keys)
    outcomes = []
    for one in (first, second):
        async with live.state.sessionmaker() as s:
            media, written = await media_service.record_completion(s, settings, one, now=now)
            await s.commit()
        outcomes.append((media.status.value, written))
    assert outcomes == [("ready", True), ("ready", False)]
    async with live.state.sessionmaker() as s:
        row = await s.get(Media, t["media_id"])
        assert row is not None
    kept = local_store.path_for(row.storage_key).read_bytes()
    assert hashlib.sha256(kept).hexdigest() == row.sha256
    assert row.storage_key in first.writes.keys
    assert not any(local_store.path_for(k).exists() for k in second.writes.keys)


async def test_a_completion_whose_item_went_away_is_404_and_leaves_nothing(
    live: FastAPI, http: AsyncClient, local_store: LocalMediaStore
) -> None:
    """The item is removed (the resident's cleanup) while its upload is
    checked: the completion answers 404 and what it stored is deleted."""
    _, t = await direct_upload(http)
    settings, now = live.state.settings, live.state.clock.now()
    async with live.state.read_sessionmaker() as s:
        media = await s.get(Media, t["media_id"])
        assert media is not None
        s.expunge(media)
    staged = await media_service.stage_completion(local_store, settings, media, now=now)
    assert staged is not None and staged.writes.keys
    stored = [local_store.path_for(k) for k in staged.writes.keys]
    assert all(p.exists() for p in stored)
    async with live.state.sessionmaker() as s:
        await s.execute(delete(Media).where(Media.id == t["media_id"]))
        await s.commit()
    async with live.state.sessionmaker() as s:
        with pytest.raises(MediaNotFound):
            await media_service.record_completion(s, settings, staged, now=now)
    assert not any(p.exists() for p in stored)
