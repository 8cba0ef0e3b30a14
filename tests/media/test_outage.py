"""Object storage frozen mid-upload (issue 12 item 11): the request answers
503 with Retry-After at the storage deadline, and nothing half-written stays:
no media row, no object."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.storage.s3 import S3MediaStore
from tests import mediafiles, support
from tests.core.test_storage import FrozenServer, frozen_store
from tests.media.test_tickets import ticket
from tests.media.test_upload import citizen, media_count, upload

pytestmark = pytest.mark.usefixtures("seeded")


async def test_upload_to_a_frozen_server_is_503_at_the_deadline(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection
) -> None:
    server = FrozenServer()
    try:
        app.state.media_store = frozen_store(server.port, deadline=1.0)
        h = await citizen(client)
        before = await media_count(connection)
        started = time.monotonic()
        resp = await client.post(
            "/api/v1/media",
            headers=h,
            data={"kind": "video"},
            files={"file": ("v.mp4", mediafiles.mp4())},
        )
        assert time.monotonic() - started < 5.0
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] == "30"
        assert resp.json()["error"] == "storage_unavailable"
        assert await media_count(connection) == before
        # A ticket needs no storage call (signing is local); completing it does.
        t = await ticket(client, h, "voice", "audio/amr", 100)
        assert t.status_code == 201
        done = await client.post(f"/api/v1/media/{t.json()['media_id']}/complete", headers=h)
        assert done.status_code == 503 and done.headers["Retry-After"] == "30"
    finally:
        server.close()


async def test_moto_stopped_mid_upload_leaves_no_row_and_no_object(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, tmp_path: Path
) -> None:
    server = support.start_moto(tmp_path)
    try:
        store = S3MediaStore(
            endpoint=server.endpoint,
            access_key="testing",
            secret_key="testing",
            bucket=f"stopped-{os.urandom(3).hex()}",
            secure=False,
            region="us-east-1",
            deadline_seconds=1.0,
            read_timeout=20.0,
        )
        await store.start()
        app.state.media_store = store
        h = await citizen(client)
        before = await media_count(connection)
        server.process.send_signal(signal.SIGSTOP)
        try:
            status, body = await upload(client, h, mediafiles.wav(), "voice")
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert status == 503, body
        assert await media_count(connection) == before
        # The abandoned write lands now, and is taken back: slow when loaded
        # (30 s were once not enough for it under CI's two suites at once).
        for _ in range(1200):
            listed = await store.list_prefix("media/")
            if not listed:
                break
            await asyncio.sleep(0.05)
        assert await store.list_prefix("media/") == []
    finally:
        server.stop()
