"""Without a plain citizen id on a protected case, the resident still finds,
follows, supplements and rates it, and nobody else can; retries still replay."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints import identity
from app.core import crypto
from app.idempotency import service as idempotency
from app.models import Complaint, IdempotencyRecord, Media, Notification, Rating
from tests import mediafiles
from tests.identity.helpers import accuse, anonymous, resident
from tests.stats.scenario import rate, staff
from tests.workflow.helpers import act, case

pytestmark = pytest.mark.usefixtures("seeded")

NAME, PHONE = "欧阳锋", "13800138000"


async def test_the_filer_follows_a_protected_case_and_nobody_else_can(
    client: AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    s = await staff(client, connection)
    me = await resident(client, "own.me")
    stranger = await resident(client, "own.stranger")
    acc = await accuse(client, me, name=NAME, phone=PHONE)
    anon = await anonymous(client, me)
    mine = (await client.get("/api/v1/complaints/mine", headers=me.headers)).json()["items"]
    assert {acc["id"], anon["id"]} <= {c["id"] for c in mine}
    theirs = (await client.get("/api/v1/complaints/mine", headers=stranger.headers)).json()
    assert theirs["items"] == []

    detail = (await client.get(f"/api/v1/complaints/{acc['id']}", headers=me.headers)).json()
    assert detail["contact_name"] == NAME and detail["contact_phone"] == "138****8000"
    for cid in (acc["id"], anon["id"]):
        got = await client.get(f"/api/v1/complaints/{cid}", headers=stranger.headers)
        assert got.status_code == 404
        sup = await client.post(
            f"/api/v1/complaints/{cid}/supplements",
            headers=stranger.headers,
            json={"content": "冒充补充", "media_ids": []},
        )
        assert sup.status_code == 404

    upload = await client.post(
        "/api/v1/media",
        headers=me.headers,
        data={"kind": "image"},
        files={"file": ("p.png", mediafiles.png())},
    )
    mid = upload.json()["id"]
    sup = await client.post(
        f"/api/v1/complaints/{acc['id']}/supplements",
        headers=me.headers,
        json={"content": "补充照片", "media_ids": [mid]},
    )
    assert sup.status_code == 201, sup.text
    m = await session.get(Media, mid)
    assert m is not None and m.attached_to == f"complaint:{acc['id']}"
    assert m.owner_citizen_id is None and m.owner_staff_id is None

    v = (await case(client, s.zhang, acc["id"]))["version"]
    for action, body in (("accept", {}), ("resolve", {"note": "已查实并处理"})):
        v = (await act(client, s.zhang, acc["id"], action, v, **body)).json()["version"]
    refused = await client.post(
        f"/api/v1/complaints/{acc['id']}/rating",
        headers=stranger.headers,
        json={"score": 1, "satisfaction": "unsatisfied"},
    )
    assert refused.status_code == 404
    await rate(client, me.headers, acc["id"], 5, "satisfied")
    rating = (
        await session.execute(select(Rating).where(Rating.complaint_id == acc["id"]))
    ).scalar_one()
    assert rating.citizen_id is None

    notices = (
        (
            await session.execute(
                select(Notification).where(
                    Notification.complaint_id == acc["id"], Notification.recipient_kind == "citizen"
                )
            )
        )
        .scalars()
        .all()
    )
    assert notices and all(n.recipient_id is None for n in notices)
    row = await session.get(Complaint, acc["id"])
    assert row is not None and row.citizen_id is None and identity.owned_by(row, me.id)
    assert not identity.owned_by(row, stranger.id)


async def test_a_retried_anonymous_filing_replays_its_sealed_answer(
    client: AsyncClient, session: AsyncSession
) -> None:
    me = await resident(client, "own.retry")
    other = await resident(client, "own.other")
    body = {
        "item_code": "0101",
        "region_code": "511702005001",
        "content": "村里的财务收支好几个季度都没有公开了，公示栏一直是空的。",
        "anonymous": True,
    }
    first = await client.post(
        "/api/v1/complaints", headers={**me.headers, "Idempotency-Key": "k-1"}, json=body
    )
    again = await client.post(
        "/api/v1/complaints", headers={**me.headers, "Idempotency-Key": "k-1"}, json=body
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and first.json()["query_code"]
    changed = await client.post(
        "/api/v1/complaints",
        headers={**me.headers, "Idempotency-Key": "k-1"},
        json={**body, "content": body["content"] + "（改）"},
    )
    assert changed.status_code == 409
    # the same key from someone else is their own request, not a replay of mine
    theirs = await client.post(
        "/api/v1/complaints", headers={**other.headers, "Idempotency-Key": "k-1"}, json=body
    )
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]

    records = (await session.execute(select(IdempotencyRecord))).scalars().all()
    mine = [
        r
        for r in records
        if r.owner == idempotency.owner_digest("complaint", f"citizen:{me.id}", "k-1")
    ]
    assert len(mine) == 1 and len(records) == 2
    assert all(not r.owner.startswith("citizen") for r in records)
    stored = mine[0].response
    assert stored is not None and list(stored) == ["sealed"] and crypto.is_sealed(stored["sealed"])
    assert first.json()["id"] not in str(stored) and first.json()["query_code"] not in str(stored)
