"""Staff evidence and offline-intake material go through the same checks as a
resident's attachments: checked before anything is written, same limits."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.mediafiles import png
from tests.stats.scenario import staff
from tests.workflow.helpers import VILLAGE, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def upload_png(client: AsyncClient, h: dict[str, str]) -> str:
    r = await client.post(
        "/api/v1/media", headers=h, data={"kind": "image"}, files={"file": ("p.png", png())}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_bad_evidence_writes_nothing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    cid = (await file_case(client, await citizen(client, "ev.one")))["id"]
    before = await case(client, s.zhang, cid)
    r = await act(client, s.zhang, cid, "accept", before["version"], media_ids=["f" * 32])
    assert r.status_code == 404 and r.json()["error"] == "media_not_found"
    after = await case(client, s.zhang, cid)
    assert (after["version"], len(after["events"])) == (before["version"], len(before["events"]))
    # Someone else's upload is not evidence either; one's own is.
    other = await upload_png(client, s.wang)
    r = await act(client, s.zhang, cid, "accept", before["version"], media_ids=[other])
    assert r.status_code == 404
    mine = await upload_png(client, s.zhang)
    r = await act(client, s.zhang, cid, "accept", before["version"], media_ids=[mine])
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["media"]] == [mine]
    # Used once, it cannot be attached again.
    r = await act(client, s.zhang, cid, "reply", r.json()["version"], note="进展", media_ids=[mine])
    assert r.status_code == 409


async def test_offline_intake_keeps_the_per_case_limits(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    ids = [await upload_png(client, s.zhang) for _ in range(10)]
    body = {
        "channel": "visit",
        "item_code": "0101",
        "region_code": VILLAGE,
        "content": "来访群众反映村务公开问题，附现场照片",
        "reporter_name": "王大爷",
        "reporter_phone": "13800002222",
        "media_ids": ids,
    }
    r = await client.post("/api/v1/staff/complaints", headers=s.zhang, json=body)
    assert r.status_code == 400 and "9" in r.json()["detail"], r.text
    r = await client.post(
        "/api/v1/staff/complaints", headers=s.zhang, json={**body, "media_ids": ids[:9]}
    )
    assert r.status_code == 201, r.text
