"""Direct uploads: a presigned POST, the phone sends the file, the server checks it."""

from __future__ import annotations

import io
import os

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image

from tests import mediafiles, support
from tests.conftest import make_s3_store
from tests.media.test_upload import citizen

pytestmark = pytest.mark.usefixtures("seeded")


async def ticket(
    client: AsyncClient, h: dict[str, str], kind: str, ctype: str, size: int
) -> httpx.Response:
    return await client.post(
        "/api/v1/media/upload-tickets",
        headers=h,
        json={"kind": kind, "content_type": ctype, "size": size},
    )


async def test_local_direct_upload_then_complete(client: AsyncClient) -> None:
    h = await citizen(client)
    data = mediafiles.mp4()
    t = (await ticket(client, h, "video", "video/mp4", len(data))).json()
    assert t["max_size"] == len(data) and t["fields"]["key"].endswith(".mp4")
    before = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
    assert before.status_code == 409  # nothing uploaded yet
    sent = await client.post(
        t["url"].replace("http://testserver", ""), data=t["fields"], files={"file": ("v.mp4", data)}
    )
    assert sent.status_code == 204, sent.text
    done = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
    assert (
        done.status_code == 200
        and done.json()["status"] == "ready"
        and done.json()["size"] == len(data)
    )
    again = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
    assert again.status_code == 200


async def test_local_direct_upload_refuses_tampered_forms(client: AsyncClient) -> None:
    h = await citizen(client)
    data = mediafiles.wav()
    t = (await ticket(client, h, "voice", "audio/wav", len(data))).json()
    url = t["url"].replace("http://testserver", "")
    assert (
        await client.post(
            url, data={**t["fields"], "key": "media/evil.wav"}, files={"file": ("a", data)}
        )
    ).status_code == 403
    assert (
        await client.post(
            url, data={**t["fields"], "signature": "0" * 64}, files={"file": ("a", data)}
        )
    ).status_code == 403
    assert (
        await client.post(url, data=t["fields"], files={"file": ("a", data + b"x" * 10)})
    ).status_code == 413


async def test_direct_upload_with_wrong_content_is_refused_at_complete(client: AsyncClient) -> None:
    h = await citizen(client)
    fake = mediafiles.png()
    t = (await ticket(client, h, "video", "video/mp4", len(fake))).json()
    await client.post(
        t["url"].replace("http://testserver", ""), data=t["fields"], files={"file": ("v.mp4", fake)}
    )
    resp = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
    assert resp.status_code == 415


@pytest.mark.parametrize(
    ("kind", "ctype", "size", "status"),
    [
        ("video", "image/png", 100, 415),
        ("image", "image/gif", 100, 415),
        ("video", "video/mp4", 600 * 1024 * 1024, 413),
        ("video", "video/mp4", 0, 422),
        ("sticker", "image/png", 10, 422),
    ],
)
async def test_bad_ticket_requests(
    client: AsyncClient, kind: str, ctype: str, size: int, status: int
) -> None:
    h = await citizen(client)
    assert (await ticket(client, h, kind, ctype, size)).status_code == status


async def test_other_resident_cannot_complete_my_ticket(client: AsyncClient) -> None:
    mine, theirs = await citizen(client, "a1"), await citizen(client, "b1")
    t = (await ticket(client, mine, "voice", "audio/amr", 100)).json()
    assert (
        await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=theirs)
    ).status_code == 404


async def test_s3_direct_upload_strips_exif_at_complete(
    app: FastAPI, client: AsyncClient, s3: support.S3Server
) -> None:
    store = make_s3_store(s3, bucket=f"direct-{os.urandom(3).hex()}")
    await store.start()
    app.state.media_store = store
    h = await citizen(client)
    photo = mediafiles.jpeg_with_gps()
    t = (await ticket(client, h, "image", "image/jpeg", len(photo))).json()
    assert t["url"].startswith(f"http://{s3.endpoint}/")
    async with httpx.AsyncClient() as phone:  # the phone talks to MinIO, not to us
        sent = await phone.post(
            t["url"], data=t["fields"], files={"file": ("IMG.jpg", photo, "image/jpeg")}
        )
    assert sent.status_code in (200, 201, 204), sent.text
    done = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=h)
    assert done.status_code == 200, done.text
    async with httpx.AsyncClient() as viewer:
        stored = (await viewer.get(done.json()["url"])).content
    assert not Image.open(io.BytesIO(stored)).getexif()
    assert b"iPhone" not in stored
