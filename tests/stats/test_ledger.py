from __future__ import annotations

import io
import itertools
import json
import zipfile

import pytest
from httpx import AsyncClient
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncConnection

from app.ledger.service import HEADERS
from tests import mediafiles
from tests.stats.scenario import close, rate, staff
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def test_ledger_opens_and_matches_the_queue(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "lg.r")
    anon = await citizen(client, "lg.anon")
    ids = [(await file_case(client, r))["id"] for _ in range(3)]
    await file_case(client, anon, anonymous=True, contact_name=None, contact_phone=None)
    await close(client, s, ids[0])
    await rate(client, r, ids[0], 5, "satisfied")
    resp = await client.get("/api/v1/staff/ledger.xlsx", headers=s.zhang)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(resp.content), read_only=True)
    rows = list(wb["台账"].iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS
    queue = (await client.get("/api/v1/staff/complaints?limit=200", headers=s.zhang)).json()[
        "items"
    ]
    assert [row[0] for row in rows[1:]] == [i["tracking_no"] for i in queue]
    by_no = {row[0]: row for row in rows[1:]}
    closed = next(i for i in queue if i["id"] == ids[0])
    row = by_no[closed["tracking_no"]]
    assert row[9] == "已销号" and row[13] == "满意（5分）" and row[12]
    assert "139****1111" in row[2] and "13900001111" not in "".join(
        str(c) for r_ in rows for c in r_ if c
    )
    assert "匿名" in [r_[2] for r_ in rows[1:]]
    filtered = await client.get("/api/v1/staff/ledger.xlsx?status=closed", headers=s.zhang)
    frows = list(
        load_workbook(io.BytesIO(filtered.content), read_only=True)["台账"].iter_rows(
            values_only=True
        )
    )
    assert [r_[0] for r_ in frows[1:]] == [closed["tracking_no"]]


async def test_dossier_holds_the_case_its_chain_and_media(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "lg.dossier")
    photo = (
        await client.post(
            "/api/v1/media",
            headers=r,
            data={"kind": "image"},
            files={"file": ("p.jpg", mediafiles.jpeg_with_gps())},
        )
    ).json()
    cid = (await file_case(client, r, media_ids=[photo["id"]]))["id"]
    await close(client, s, cid)
    resp = await client.get(f"/api/v1/staff/complaints/{cid}/dossier.zip", headers=s.zhang)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(resp.content))
    names = z.namelist()
    assert {"case.json", "events.jsonl", "ratings.json", "callbacks.json"} <= set(names)
    assert any(n.startswith("media/image-") for n in names)
    events = [json.loads(line) for line in z.read("events.jsonl").decode().splitlines()]
    assert events[0]["kind"] == "filed" and events[-1]["kind"] == "closed"
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))
    assert json.loads(z.read("case.json"))["id"] == cid
    other = await client.get(
        "/api/v1/staff/complaints/" + "f" * 32 + "/dossier.zip", headers=s.zhang
    )
    assert other.status_code == 404


async def test_ledger_needs_staff(client: AsyncClient) -> None:
    assert (await client.get("/api/v1/staff/ledger.xlsx")).status_code == 401


async def test_downloads_leave_no_descriptor_or_file_behind(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    import os
    import tempfile
    from pathlib import Path

    s = await staff(client, connection)
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        assert (await client.get("/api/v1/staff/ledger.xlsx", headers=s.zhang)).status_code == 200
    assert len(os.listdir("/proc/self/fd")) <= fds
    assert not list(Path(tempfile.gettempdir()).glob("ledger-*.xlsx"))
