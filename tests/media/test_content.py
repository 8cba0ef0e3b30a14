"""Voice, video and images are checked by their content (issue 13 item 10,
issue 12 item 13): what does not decode is refused, what decodes is measured,
and what a browser cannot play gets a playable copy from the worker."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import av
import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.core.storage.local import LocalMediaStore
from app.media import images, maintenance
from app.models import Media
from app.models.media import DeriveState
from tests import mediafiles
from tests.media.test_upload import citizen, media_count, upload

pytestmark = pytest.mark.usefixtures("seeded")


def stored_files(store: LocalMediaStore) -> list[str]:
    root = store.path_for("media").parent
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith(".tmp")
    )


async def row(connection: AsyncConnection, media_id: str) -> Media:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        media = await s.get(Media, media_id)
        assert media is not None
        s.expunge(media)
        return media


async def fetch(client: AsyncClient, url: str) -> bytes:
    resp = await client.get(url.replace("http://testserver", ""))
    assert resp.status_code == 200, resp.text
    return resp.content


def decoded(data: bytes) -> tuple[str, str | None, float]:
    """(container, first stream's codec, seconds) as FFmpeg reads ``data``."""
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams[0]
        return c.format.name, stream.codec_context.name, (c.duration or 0) / 1_000_000


@pytest.mark.parametrize(
    ("make", "kind", "ctype", "codec", "plays_as_is"),
    [
        (mediafiles.wav, "voice", "audio/wav", "pcm_s16le", True),
        (mediafiles.m4a, "voice", "audio/mp4", "aac", True),
        (mediafiles.mp3, "voice", "audio/mpeg", "mp3float", True),
        (mediafiles.amr, "voice", "audio/amr", "amrnb", False),
        (mediafiles.mp4, "video", "video/mp4", "h264", True),
        (mediafiles.mov_mpeg4, "video", "video/quicktime", "mpeg4", False),
    ],
)
async def test_real_recordings_are_measured_and_kept_as_uploaded(
    client: AsyncClient,
    connection: AsyncConnection,
    make: Callable[[], bytes],
    kind: str,
    ctype: str,
    codec: str,
    plays_as_is: bool,
) -> None:
    h = await citizen(client)
    data = make()
    status, body = await upload(client, h, data, kind, "clip.bin", "application/octet-stream")
    assert status == 201, body
    assert body["content_type"] == ctype and body["codec"] == codec
    assert 400 <= int(body["duration_ms"]) <= 1200  # 0.5 s WAV, 1 s the others
    assert await fetch(client, str(body["url"])) == data  # the original, byte for byte
    media = await row(connection, str(body["id"]))
    assert media.sha256 and media.size == len(data)
    if kind == "video":
        assert (body["width"], body["height"]) == (64, 64)
        poster = Image.open(io.BytesIO(await fetch(client, str(body["poster_url"]))))
        assert poster.format == "JPEG" and poster.size == (64, 64)
    else:
        assert body["poster_url"] is None
    if plays_as_is:
        assert body["play_url"] == body["url"] and media.derive_state is None
    else:  # the worker makes a copy; until then there is nothing to play
        assert body["play_url"] is None and media.derive_state is DeriveState.pending


FAKES = [
    ("wav header + 5 KB random", mediafiles.wav_header_then_random, "voice"),
    ("mp4 first 64 bytes + random", mediafiles.mp4_head_then_random, "video"),
    ("#!AMR + random", mediafiles.amr_magic_then_random, "voice"),
]


@pytest.mark.parametrize(("_name", "make", "kind"), FAKES)
async def test_random_bytes_behind_a_media_header_are_415_and_nothing_is_kept(
    client: AsyncClient,
    connection: AsyncConnection,
    local_store: LocalMediaStore,
    _name: str,
    make: Callable[[], bytes],
    kind: str,
) -> None:
    h = await citizen(client)
    before = await media_count(connection)
    status, body = await upload(client, h, make(), kind)
    assert status == 415, body
    assert "无法播放" in str(body["detail"])
    assert await media_count(connection) == before
    assert stored_files(local_store) == []


@pytest.mark.parametrize(("_name", "make", "kind"), FAKES)
async def test_direct_uploads_of_random_bytes_are_refused_at_complete(
    client: AsyncClient,
    local_store: LocalMediaStore,
    _name: str,
    make: Callable[[], bytes],
    kind: str,
) -> None:
    h = await citizen(client)
    data = make()
    ctype = {"voice": "audio/wav", "video": "video/mp4"}[kind]
    if data.startswith(b"#!AMR"):
        ctype = "audio/amr"
    t = (
        await client.post(
            "/api/v1/media/upload-tickets",
            headers=h,
            json={"kind": kind, "content_type": ctype, "size": len(data)},
        )
    ).json()
    sent = await client.post(
        t["url"].replace("http://testserver", ""), data=t["fields"], files={"file": ("f", data)}
    )
    assert sent.status_code == 204
    done = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
    assert done.status_code == 415, done.text
    assert stored_files(local_store) == []  # neither the upload nor a final copy
    again = await client.get(f"/api/v1/media/{t['media_id']}", headers=h)
    assert again.json()["status"] == "pending" and again.json()["url"] is None


@pytest.mark.parametrize(
    ("setting", "make", "kind", "limit_text"),
    [
        ("media_max_voice_seconds", lambda: mediafiles.amr(3.0), "voice", "2 秒"),
        ("media_max_video_seconds", lambda: mediafiles.mp4(seconds=3.0), "video", "2 秒"),
    ],
)
async def test_too_long_is_413_naming_the_limit(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    setting: str,
    make: Callable[[], bytes],
    kind: str,
    limit_text: str,
) -> None:
    app.state.settings = app.state.settings.model_copy(update={setting: 2})
    h = await citizen(client)
    before = await media_count(connection)
    status, body = await upload(client, h, make(), kind)
    assert status == 413 and limit_text in str(body["detail"]), body
    assert await media_count(connection) == before


async def test_video_with_too_many_pixels_is_413(app: FastAPI, client: AsyncClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"media_max_video_pixels": 4000})
    h = await citizen(client)
    status, body = await upload(client, h, mediafiles.mp4(), "video")
    assert status == 413 and "64×64" in str(body["detail"]), body


class TestImageBomb:
    """A 436 KB PNG of 100 megapixels: refused from its header, fast."""

    async def test_upload_is_413_naming_the_limit_without_decoding(
        self, client: AsyncClient, connection: AsyncConnection, local_store: LocalMediaStore
    ) -> None:
        bomb = mediafiles.png_bomb()
        assert len(bomb) < 600_000
        h = await citizen(client)
        before = await media_count(connection)
        started = time.monotonic()
        status, body = await upload(client, h, bomb, "image", "bomb.png", "image/png")
        assert time.monotonic() - started < 2.0  # decoding it takes seconds and 100 MB+
        assert status == 413, body
        assert "40 百万像素" in str(body["detail"])
        assert await media_count(connection) == before
        assert stored_files(local_store) == []

    async def test_the_per_kind_limit_is_a_setting(self, app: FastAPI, client: AsyncClient) -> None:
        app.state.settings = app.state.settings.model_copy(update={"media_max_image_pixels": 1000})
        h = await citizen(client)
        status, body = await upload(client, h, mediafiles.png((64, 48)), "image")
        assert status == 413 and "0.001 百万像素" in str(body["detail"]), body

    def test_pillow_itself_refuses_it_anywhere_in_the_process(self) -> None:
        assert Image.MAX_IMAGE_PIXELS == images.PIXEL_CEILING // 2
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(mediafiles.png_bomb())).load()


class TestPlayableCopies:
    """The worker makes AAC/H.264 copies beside the untouched original."""

    async def _worker(
        self, app: FastAPI, store: LocalMediaStore, clock: FixedClock
    ) -> maintenance.MediaTick:
        maker: Any = app.state.sessionmaker
        return await maintenance.tick(maker, store, app.state.settings, now=clock.now())

    @pytest.mark.parametrize(
        ("make", "kind", "container", "codec"),
        [(mediafiles.amr, "voice", "mov", "aac"), (mediafiles.mov_mpeg4, "video", "mov", "h264")],
    )
    async def test_a_copy_that_plays_is_made_and_the_original_kept(
        self,
        app: FastAPI,
        client: AsyncClient,
        connection: AsyncConnection,
        local_store: LocalMediaStore,
        clock: FixedClock,
        make: Callable[[], bytes],
        kind: str,
        container: str,
        codec: str,
    ) -> None:
        h = await citizen(client)
        data = make()
        _, body = await upload(client, h, data, kind)
        result = await self._worker(app, local_store, clock)
        assert result.derived == 1 and result.derive_failed == 0
        after = (await client.get(f"/api/v1/media/{body['id']}", headers=h)).json()
        assert after["url"] and after["play_url"] and after["play_url"] != after["url"]
        assert await fetch(client, str(after["url"])) == data  # the evidence is untouched
        copy = await fetch(client, str(after["play_url"]))
        found_container, found_codec, seconds = decoded(copy)
        assert (found_container.split(",")[0], found_codec) == (container, codec)
        assert 0.8 < seconds < 1.5
        media = await row(connection, str(body["id"]))
        assert media.derive_state is DeriveState.done and media.derivatives is not None
        assert media.derivatives["play"]["size"] == len(copy)
        assert (await self._worker(app, local_store, clock)).derived == 0  # done once

    @pytest.fixture
    async def derived_voice(
        self, app: FastAPI, client: AsyncClient, local_store: LocalMediaStore, clock: FixedClock
    ) -> tuple[dict[str, str], str]:
        """A resident's voice clip with its play copy made: their headers, its id."""
        h = await citizen(client)
        _, body = await upload(client, h, mediafiles.amr(), "voice")
        assert (await self._worker(app, local_store, clock)).derived == 1
        return h, str(body["id"])

    async def test_a_copy_written_again_with_the_same_bytes_is_resealed_by_a_read(
        self,
        derived_voice: tuple[dict[str, str], str],
        client: AsyncClient,
        connection: AsyncConnection,
        local_store: LocalMediaStore,
    ) -> None:
        """A restored backup gives the play copy a new tag: the resident's read
        (a read session) hashes it again, still links it, and the row keeps
        the new tag, written apart."""
        h, media_id = derived_voice
        media = await row(connection, media_id)
        assert media.derivatives is not None
        play = media.derivatives["play"]
        path = local_store.path_for(play["key"])
        path.write_bytes(path.read_bytes())
        info = await local_store.stat(play["key"])
        assert info is not None and info.etag != play["etag"]
        after = (await client.get(f"/api/v1/media/{media_id}", headers=h)).json()
        assert after["play_url"] and after["play_url"] != after["url"]
        kept = await row(connection, media_id)
        assert kept.derivatives is not None and kept.derivatives["play"]["etag"] == info.etag
        assert kept.derivatives["play"]["sha256"] == play["sha256"]

    async def test_a_tampered_original_gets_no_copy(
        self,
        app: FastAPI,
        client: AsyncClient,
        connection: AsyncConnection,
        local_store: LocalMediaStore,
        clock: FixedClock,
    ) -> None:
        h = await citizen(client)
        _, body = await upload(client, h, mediafiles.amr(), "voice")
        media = await row(connection, str(body["id"]))
        local_store.path_for(media.storage_key).write_bytes(mediafiles.amr(2.0))
        result = await self._worker(app, local_store, clock)
        assert result.derived == 0 and result.derive_failed == 1
        media = await row(connection, str(body["id"]))
        assert media.integrity_failed_at is not None and not media.derivatives
        assert media.derive_state is DeriveState.pending  # retried later, up to the limit


async def test_s3_upload_of_a_voice_clip_round_trips(
    app: FastAPI, client: AsyncClient, s3: Any
) -> None:
    from tests.conftest import make_s3_store

    store = make_s3_store(s3, bucket="content-voice")
    await store.start()
    app.state.media_store = store
    h = await citizen(client)
    data = mediafiles.m4a()
    status, body = await upload(client, h, data, "voice")
    assert status == 201, body
    async with httpx.AsyncClient() as phone:
        assert (await phone.get(str(body["play_url"]))).content == data
