"""Evidence stays what was checked (issue 12 item 19, issue 13 item 9):
a direct-upload form cannot touch the object after ``complete``, and the
stored bytes are held to their recorded sha256 when served, attached,
checked by the worker or exported."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.core.errors import Conflict
from app.core.storage import MediaStore
from app.core.storage.local import LocalMediaStore
from app.media import maintenance
from app.media import service as media_service
from app.media.dependencies import Uploader
from app.media.ingest import once
from app.media.integrity import verify_object
from app.models import Media
from tests import mediafiles, support
from tests.conftest import make_s3_store
from tests.media.test_tickets import ticket
from tests.media.test_upload import citizen, upload

pytestmark = pytest.mark.usefixtures("seeded")


def session_on(connection: AsyncConnection) -> AsyncSession:
    return AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


async def load(connection: AsyncConnection, media_id: str) -> Media:
    async with session_on(connection) as s:
        media = await s.get(Media, media_id)
        assert media is not None
        s.expunge(media)
        return media


async def read_all(store: MediaStore, key: str) -> bytes:
    return b"".join([c async for c in store.iter_object(key)])


async def post_form(client: AsyncClient, t: dict[str, Any], data: bytes, ctype: str) -> int:
    url = str(t["url"])
    if url.startswith("http://testserver"):
        resp = await client.post(
            url.replace("http://testserver", ""), data=t["fields"], files={"file": ("f", data)}
        )
    else:  # the phone talks to S3 directly
        async with httpx.AsyncClient() as phone:
            resp = await phone.post(url, data=t["fields"], files={"file": ("f", data, ctype)})
    return resp.status_code


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, app: FastAPI, local_store: LocalMediaStore) -> Any:
    if request.param == "local":
        return local_store
    server: support.S3Server = request.getfixturevalue("s3")
    s3_store = make_s3_store(server, bucket=f"integrity-{os.urandom(3).hex()}")
    await s3_store.start()
    app.state.media_store = s3_store
    return s3_store


class TestOneTimeUploadKeys:
    async def test_reposting_the_form_after_complete_changes_nothing(
        self, client: AsyncClient, connection: AsyncConnection, store: MediaStore
    ) -> None:
        h = await citizen(client)
        photo = mediafiles.jpeg_with_gps()
        t = (await ticket(client, h, "image", "image/jpeg", len(photo) + 4096)).json()
        assert t["fields"]["key"].startswith("uploads/")
        assert await post_form(client, t, photo, "image/jpeg") in (200, 201, 204)
        done = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
        assert done.status_code == 200, done.text
        media = await load(connection, t["media_id"])
        assert media.storage_key.startswith("media/") and media.upload_key is None
        checked = await read_all(store, media.storage_key)
        assert hashlib.sha256(checked).hexdigest() == media.sha256
        assert await store.stat(t["fields"]["key"]) is None  # the one-time object is gone

        # The attack of issue 12 item 19: the same form again, with GPS EXIF
        # and a script appended, after the server checked and cleaned the photo.
        evil = photo + b"<script>alert(1)</script>"
        reposted = await post_form(client, t, evil, "image/jpeg")
        # Local storage refuses a used form; S3 cannot revoke it, the bytes land
        # on the one-time key, which nothing reads any more.
        assert reposted == 409 if isinstance(store, LocalMediaStore) else reposted in (200, 204)
        again = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
        assert again.status_code == 200
        after = await load(connection, t["media_id"])
        assert (after.sha256, after.size, after.content_type) == (
            media.sha256,
            media.size,
            media.content_type,
        )
        served = (await client.get(f"/api/v1/media/{t['media_id']}", headers=h)).json()
        async with httpx.AsyncClient() as viewer:
            url = str(served["url"])
            got = (
                (await client.get(url.replace("http://testserver", ""))).content
                if url.startswith("http://testserver")
                else (await viewer.get(url)).content
            )
        assert got == checked and b"<script>" not in got
        assert not Image.open(io.BytesIO(got)).getexif()

    async def test_voice_posted_to_s3_is_checked_copied_and_measured(
        self, client: AsyncClient, connection: AsyncConnection, store: MediaStore
    ) -> None:
        h = await citizen(client)
        data = mediafiles.amr()
        t = (await ticket(client, h, "voice", "audio/amr", len(data))).json()
        assert await post_form(client, t, data, "audio/amr") in (200, 201, 204)
        done = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
        assert done.status_code == 200, done.text
        assert done.json()["codec"] == "amrnb" and done.json()["duration_ms"] > 900
        media = await load(connection, t["media_id"])
        assert media.sha256 == hashlib.sha256(data).hexdigest()
        assert await read_all(store, media.storage_key) == data


async def replaced(
    client: AsyncClient, connection: AsyncConnection, store: MediaStore
) -> tuple[dict[str, str], dict[str, Any], Media]:
    """A resident's image whose stored object someone with access to the
    bucket has swapped: their headers, the upload's answer, the row before."""
    h = await citizen(client)
    _, body = await upload(client, h, mediafiles.png(), "image")
    media = await load(connection, str(body["id"]))
    await store.put_stream(media.storage_key, once(mediafiles.png((8, 8))), content_type="x/y")
    return h, body, media


class TestServedOnlyWhileUnchanged:
    async def test_a_replaced_object_gets_no_link_and_is_flagged(
        self, client: AsyncClient, connection: AsyncConnection, store: MediaStore
    ) -> None:
        h, body, media = await replaced(client, connection, store)
        got = (await client.get(f"/api/v1/media/{body['id']}", headers=h)).json()
        assert got["url"] is None and got["play_url"] is None
        assert (await load(connection, str(body["id"]))).integrity_failed_at is not None
        check = await verify_object(store, media)
        assert not check and check.problem == "mismatch"
        assert check.expected_sha256 == media.sha256 != check.actual_sha256

    async def test_the_same_bytes_written_again_are_resealed_not_flagged(
        self, client: AsyncClient, connection: AsyncConnection, store: MediaStore
    ) -> None:
        h = await citizen(client)
        _, body = await upload(client, h, mediafiles.wav(), "voice")
        media = await load(connection, str(body["id"]))
        same = await read_all(store, media.storage_key)
        await store.put_stream(media.storage_key, once(same), content_type="a/b")
        got = (await client.get(f"/api/v1/media/{body['id']}", headers=h)).json()
        assert got["url"] is not None
        after = await load(connection, str(body["id"]))
        assert after.integrity_failed_at is None
        # The object's tag as it is now is what vouches for the hash next time
        # (kept by the read, in a writer session of its own).
        info = await store.stat(media.storage_key)
        assert info is not None and after.etag == info.etag

    async def test_a_read_seals_media_that_had_no_recorded_sha256(
        self, client: AsyncClient, connection: AsyncConnection, store: MediaStore
    ) -> None:
        h = await citizen(client)
        _, body = await upload(client, h, mediafiles.png(), "image")
        await connection.execute(
            update(Media).where(Media.id == body["id"]).values(sha256=None, etag=None)
        )
        got = await client.get(f"/api/v1/media/{body['id']}", headers=h)
        assert got.status_code == 200 and got.json()["url"] is not None
        sealed = await load(connection, str(body["id"]))
        assert (
            sealed.sha256 == hashlib.sha256(await read_all(store, sealed.storage_key)).hexdigest()
        )
        assert sealed.etag is not None and sealed.integrity_failed_at is None

    async def test_a_first_failure_keeps_its_time(
        self,
        client: AsyncClient,
        connection: AsyncConnection,
        store: MediaStore,
        clock: FixedClock,
    ) -> None:
        """Each read of a replaced object finds it changed again; the row keeps
        when it was first found."""
        h, body, _ = await replaced(client, connection, store)
        await client.get(f"/api/v1/media/{body['id']}", headers=h)
        first = (await load(connection, str(body["id"]))).integrity_failed_at
        clock.advance(timedelta(hours=1))
        await client.get(f"/api/v1/media/{body['id']}", headers=h)
        assert first is not None
        assert (await load(connection, str(body["id"]))).integrity_failed_at == first


class TestVerifyObject:
    async def test_match_missing_and_sink(
        self, client: AsyncClient, connection: AsyncConnection, local_store: LocalMediaStore
    ) -> None:
        h = await citizen(client)
        data = mediafiles.mp4()
        _, body = await upload(client, h, data, "video")
        media = await load(connection, str(body["id"]))
        packed = io.BytesIO()
        check = await verify_object(local_store, media, sink=packed.write)
        assert check and check.ok and check.problem is None and check.size == len(data)
        assert packed.getvalue() == data and check.describe() == "校验一致"
        await local_store.delete(media.storage_key)
        missing = await verify_object(local_store, media)
        assert not missing and missing.problem == "missing" and missing.describe() == "文件缺失"


class TestAttaching:
    async def test_flagged_media_cannot_be_attached(
        self, client: AsyncClient, connection: AsyncConnection, local_store: LocalMediaStore
    ) -> None:
        h = await citizen(client)
        _, body = await upload(client, h, mediafiles.png(), "image")
        media = await load(connection, str(body["id"]))
        local_store.path_for(media.storage_key).write_bytes(b"\x89PNG\r\n\x1a\n tampered")
        assert (await client.get(f"/api/v1/media/{body['id']}", headers=h)).json()["url"] is None
        owner = Uploader("citizen", int(media.owner_citizen_id or 0))
        async with session_on(connection) as s:
            with pytest.raises(Conflict):
                await media_service.claimable(s, [media.id], owner)

    async def test_the_worker_checks_newly_attached_media(
        self,
        app: FastAPI,
        client: AsyncClient,
        connection: AsyncConnection,
        local_store: LocalMediaStore,
        clock: FixedClock,
    ) -> None:
        h = await citizen(client)
        good = (await upload(client, h, mediafiles.png(), "image"))[1]
        bad = (await upload(client, h, mediafiles.wav(), "voice"))[1]
        async with session_on(connection) as s:
            rows = [await s.get(Media, str(good["id"])), await s.get(Media, str(bad["id"]))]
            media_service.attach([m for m in rows if m is not None], "complaint:x", clock.now())
            await s.commit()
        tampered = await load(connection, str(bad["id"]))
        local_store.path_for(tampered.storage_key).write_bytes(mediafiles.wav(seconds=0.25))
        maker: Any = app.state.sessionmaker
        checked, mismatched = await maintenance.verify_attached(maker, local_store, now=clock.now())
        assert (checked, mismatched) == (2, 1)
        assert (await load(connection, str(good["id"]))).verified_at is not None
        flagged = await load(connection, str(bad["id"]))
        assert flagged.verified_at is not None and flagged.integrity_failed_at is not None
        assert await maintenance.verify_attached(maker, local_store, now=clock.now()) == (0, 0)


class TestOrphanSweep:
    async def test_objects_no_row_owns_are_deleted_after_an_hour(
        self,
        client: AsyncClient,
        connection: AsyncConnection,
        local_store: LocalMediaStore,
        clock: FixedClock,
    ) -> None:
        h = await citizen(client)
        _, body = await upload(client, h, mediafiles.mp4(), "video")
        media = await load(connection, str(body["id"]))
        day = f"{clock.now():%Y/%m/%d}"
        orphan = f"media/{day}/{os.urandom(16).hex()}.jpg"  # a write whose request failed
        young = f"uploads/{day}/{os.urandom(16).hex()}-abc.mp4"  # a request still running
        stray = f"media/{day}/{media.id}.old.mp4"  # under a live id, but not its object
        foreign = f"media/{day}/readme.txt"  # not named by a media id: not ours to judge
        for key in (orphan, young, stray, foreign):
            await local_store.put_stream(key, once(b"x"), content_type="a/b")
        old = (clock.now() - timedelta(hours=2)).timestamp()
        for p in local_store.path_for("media").parent.rglob("*"):
            if p.is_file():
                os.utime(p, (old, old))
        recent = (clock.now() - timedelta(minutes=5)).timestamp()
        os.utime(local_store.path_for(young), (recent, recent))
        async with session_on(connection) as s:
            deleted = await maintenance.sweep_orphans(s, local_store, now=clock.now())
        assert deleted == 2
        assert await local_store.stat(orphan) is None and await local_store.stat(stray) is None
        for key in (young, foreign, media.storage_key, media.derivatives["poster"]["key"]):  # type: ignore[index]
            assert await local_store.stat(key) is not None, key
