from __future__ import annotations

import io
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.core.storage.local import LocalMediaStore
from app.media import service as media_service
from app.models import Media
from tests import mediafiles

pytestmark = pytest.mark.usefixtures("seeded")


async def citizen(client: AsyncClient, name: str = "zhang") -> dict[str, str]:
    body = (await client.post("/api/v1/auth/wechat-login", json={"code": f"ok-{name}"})).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


async def upload(
    client: AsyncClient,
    headers: dict[str, str],
    data: bytes,
    kind: str,
    name: str = "f.bin",
    ctype: str = "application/octet-stream",
    **extra: str,
) -> tuple[int, dict[str, object]]:
    resp = await client.post(
        "/api/v1/media",
        headers={**headers, **extra},
        data={"kind": kind},
        files={"file": (name, data, ctype)},
    )
    return resp.status_code, resp.json()


async def media_count(connection: AsyncConnection) -> int:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        return int((await s.execute(select(func.count()).select_from(Media))).scalar_one())


async def test_jpeg_gps_exif_never_reaches_storage(
    client: AsyncClient, local_store: LocalMediaStore, connection: AsyncConnection
) -> None:
    h = await citizen(client)
    original = mediafiles.jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the fixture really has GPS
    status, body = await upload(client, h, original, "image", "IMG_0001.jpg", "image/jpeg")
    assert status == 201, body
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        media = await s.get(Media, str(body["id"]))
    assert media is not None
    stored = local_store.path_for(media.storage_key).read_bytes()
    assert stored != original
    img = Image.open(io.BytesIO(stored))
    exif = img.getexif()
    assert len(exif) == 0 and not exif.get_ifd(0x8825)
    assert b"iPhone" not in stored and b"Apple" not in stored
    assert img.size == (240, 320)  # orientation applied to the pixels
    assert (body["width"], body["height"]) == (240, 320)
    assert body["content_type"] == "image/jpeg" and body["url"]
    # the link the owner gets really serves the cleaned file
    link = str(body["url"]).replace("http://testserver", "")
    got = await client.get(link)
    assert got.status_code == 200 and got.content == stored


@pytest.mark.parametrize(
    ("data", "kind", "ctype"),
    [
        (mediafiles.wav(), "voice", "audio/wav"),
        (mediafiles.amr(), "voice", "audio/amr"),
        (mediafiles.mp4(), "video", "video/mp4"),
        (mediafiles.png(), "image", "image/png"),
    ],
)
async def test_supported_kinds_are_stored_with_the_sniffed_type(
    client: AsyncClient, data: bytes, kind: str, ctype: str
) -> None:
    h = await citizen(client)
    status, body = await upload(client, h, data, kind, "whatever.dat", "text/plain")
    assert status == 201, body
    assert body["content_type"] == ctype and body["kind"] == kind and body["status"] == "ready"
    if kind != "image":
        assert body["size"] == len(data)


async def test_png_renamed_mp4_is_415_and_nothing_is_written(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await citizen(client)
    before = await media_count(connection)
    status, body = await upload(client, h, mediafiles.png(), "video", "clip.mp4", "video/mp4")
    assert status == 415 and body["error"] == "unsupported_media_type"
    assert "图片" in str(body["detail"])
    assert await media_count(connection) == before


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"", 400), (b"hello, not a media file at all", 415), (b"%PDF-1.7\n...", 415)],
)
async def test_empty_and_unknown_files_are_refused(
    client: AsyncClient, data: bytes, status: int
) -> None:
    h = await citizen(client)
    assert (await upload(client, h, data, "image"))[0] == status


async def test_oversize_is_413_naming_the_limit_and_stores_nothing(
    app: FastAPI, client: AsyncClient, local_store: LocalMediaStore, connection: AsyncConnection
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"media_max_video_bytes": 2 * 1024 * 1024}
    )
    h = await citizen(client)
    before = await media_count(connection)
    status, body = await upload(
        client, h, mediafiles.mp4(3 * 1024 * 1024), "video", "big.mp4", "video/mp4"
    )
    assert status == 413 and "2 MB" in str(body["detail"])
    assert await media_count(connection) == before
    assert not [p for p in local_store.path_for("media").parent.rglob("*.mp4")]


async def test_limits_are_reported(client: AsyncClient) -> None:
    body = (await client.get("/api/v1/media/limits")).json()
    assert (
        body["video"]["max_bytes"] == 500 * 1024 * 1024
        and "video/mp4" in body["video"]["content_types"]
    )
    assert body["max_per_complaint"] == {"image": 9, "video": 1, "voice": 3}
    assert body["image"]["max_pixels"] == 40_000_000 and body["voice"]["max_seconds"] == 600
    assert body["video"]["max_seconds"] == 300 and body["voice"]["max_pixels"] is None


async def test_retry_with_the_same_idempotency_key_creates_nothing_new(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await citizen(client)
    before = await media_count(connection)
    a = await upload(client, h, mediafiles.wav(), "voice", **{"Idempotency-Key": "up-1"})
    b = await upload(client, h, mediafiles.wav(), "voice", **{"Idempotency-Key": "up-1"})
    assert a[0] == b[0] == 201 and a[1]["id"] == b[1]["id"]
    assert await media_count(connection) == before + 1


async def test_upload_needs_a_login(client: AsyncClient) -> None:
    resp = await client.post(
        "/api/v1/media", data={"kind": "voice"}, files={"file": ("a.wav", mediafiles.wav())}
    )
    assert resp.status_code == 401


async def test_bad_kind_is_422(client: AsyncClient) -> None:
    h = await citizen(client)
    assert (await upload(client, h, mediafiles.wav(), "spreadsheet"))[0] == 422


async def test_residents_cannot_upload_documents(client: AsyncClient) -> None:
    """PDFs are for staff attachments to disclosures; a resident gets a clear 415."""
    h = await citizen(client)
    status, body = await upload(client, h, b"%PDF-1.4\n%%EOF\n", "document")
    assert status == 415 and "图片" in body["detail"]


async def test_another_residents_media_is_404(client: AsyncClient) -> None:
    owner = await citizen(client, "owner")
    other = await citizen(client, "other")
    _, body = await upload(client, owner, mediafiles.wav(), "voice")
    assert (await client.get(f"/api/v1/media/{body['id']}", headers=owner)).status_code == 200
    assert (await client.get(f"/api/v1/media/{body['id']}", headers=other)).status_code == 404


async def test_cleanup_deletes_unattached_media_after_the_grace_period(
    client: AsyncClient,
    connection: AsyncConnection,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    h = await citizen(client)
    _, body = await upload(client, h, mediafiles.wav(), "voice")
    async with AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    ) as s:
        media = await s.get(Media, str(body["id"]))
        assert media is not None
        key = media.storage_key
        assert (
            await media_service.cleanup(s, local_store, now=clock.now(), grace=timedelta(hours=24))
            == 0
        )
        later = clock.now() + timedelta(hours=25)
        assert (
            await media_service.cleanup(s, local_store, now=later, grace=timedelta(hours=24)) >= 1
        )
        await s.commit()
        assert await s.get(Media, str(body["id"])) is None
    assert await local_store.stat(key) is None
