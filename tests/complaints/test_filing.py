"""The resident's path end to end, through HTTP, the way the mini-program calls it."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints.events import GENESIS, compute_hash
from app.core.clock import FixedClock
from app.models import Complaint, ComplaintEvent, Media, Notification
from app.models.enums import ComplaintStatus
from tests import mediafiles

pytestmark = pytest.mark.usefixtures("seeded")
VILLAGE = "511702005001"  # 双鱼湖社区, 凤北街道, 通川区


async def login(client: AsyncClient, name: str, scene: str | None = VILLAGE) -> dict[str, str]:
    body = (
        await client.post("/api/v1/auth/wechat-login", json={"code": f"ok-{name}", "scene": scene})
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


async def upload(client: AsyncClient, h: dict[str, str], data: bytes, kind: str) -> str:
    resp = await client.post(
        "/api/v1/media", headers=h, data={"kind": kind}, files={"file": ("f", data)}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def payload(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "item_code": "0101",
        "region_code": VILLAGE,
        "content": "组长刘某按每户6800元收了天然气安装费，三年了没人来安装，钱也没存进集体账户。",
        "media_ids": [],
        "anonymous": False,
        "contact_name": "王大爷",
        "contact_phone": "13812345678",
    }
    base.update(kw)
    return base


async def counts(connection: AsyncConnection) -> tuple[int, int, int]:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        out = [
            int((await s.execute(select(func.count()).select_from(m))).scalar_one())
            for m in (Complaint, ComplaintEvent, Notification)
        ]
    return out[0], out[1], out[2]


async def test_resident_files_with_photo_voice_and_video_then_follows_and_supplements(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, "wang")
    media = [
        await upload(client, h, mediafiles.jpeg_with_gps(), "image"),
        await upload(client, h, mediafiles.wav(), "voice"),
        await upload(client, h, mediafiles.mp4(), "video"),
    ]
    resp = await client.post("/api/v1/complaints", headers=h, json=payload(media_ids=media))
    assert resp.status_code == 201, resp.text
    filed = resp.json()
    assert re.fullmatch(r"DZ\d{8}-\d{6}", filed["tracking_no"])
    assert filed["unit"]["name"] == "凤北街道纪工委"
    assert filed["status"] == "submitted" and filed["status_label"] == "待受理"
    assert filed["due_at"] >= filed["accept_due_at"] and filed["query_code"] is None
    assert filed["region_name"] == "达州市通川区凤北街道双鱼湖社区"

    detail = (await client.get(f"/api/v1/complaints/{filed['id']}", headers=h)).json()
    assert [t["kind"] for t in detail["timeline"]] == ["filed"]  # "routed" is internal
    assert "凤北街道纪工委" in detail["timeline"][0]["note"]
    assert {m["kind"] for m in detail["media"]} == {"image", "voice", "video"}
    assert all(m["url"] for m in detail["media"])
    assert detail["contact_phone"] == "138****5678"

    sup = await client.post(
        f"/api/v1/complaints/{filed['id']}/supplements",
        headers=h,
        json={
            "content": "补充：收款收据在我这里，共5户交了钱。",
            "media_ids": [await upload(client, h, mediafiles.png(), "image")],
        },
    )
    assert sup.status_code == 201, sup.text
    assert [t["kind"] for t in sup.json()["timeline"]] == ["filed", "supplemented"]
    assert len(sup.json()["media"]) == 4

    mine = (await client.get("/api/v1/complaints/mine", headers=h)).json()
    assert [c["id"] for c in mine["items"]] == [filed["id"]]

    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        notice = (
            await s.execute(select(Notification).where(Notification.complaint_id == filed["id"]))
        ).scalar_one()
        assert (
            notice.kind == "filed"
            and filed["tracking_no"] in notice.body
            and notice.status == "pending"
        )
        chain = (
            (
                await s.execute(
                    select(ComplaintEvent)
                    .where(ComplaintEvent.complaint_id == filed["id"])
                    .order_by(ComplaintEvent.seq)
                )
            )
            .scalars()
            .all()
        )
        prev = GENESIS
        for e in chain:
            assert e.prev_hash == prev and e.hash == compute_hash(prev, e)
            prev = e.hash
        attached = (
            await s.execute(
                select(func.count())
                .select_from(Media)
                .where(Media.attached_to == f"complaint:{filed['id']}")
            )
        ).scalar_one()
        assert attached == 4


async def test_retry_with_same_key_returns_the_same_case(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, "retry")
    before = await counts(connection)
    a = await client.post(
        "/api/v1/complaints", headers={**h, "Idempotency-Key": "k-1"}, json=payload()
    )
    b = await client.post(
        "/api/v1/complaints", headers={**h, "Idempotency-Key": "k-1"}, json=payload()
    )
    assert a.status_code == b.status_code == 201
    assert a.json() == b.json()
    after = await counts(connection)
    assert after[0] == before[0] + 1
    other = await client.post(
        "/api/v1/complaints",
        headers={**h, "Idempotency-Key": "k-1"},
        json=payload(content="完全不同的另一件事情，需要另外反映"),
    )
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
    assert await counts(connection) == after


async def test_anonymous_filer_tracks_with_the_query_code(client: AsyncClient) -> None:
    h = await login(client, "anon")
    filed = (
        await client.post(
            "/api/v1/complaints",
            headers=h,
            json=payload(anonymous=True, contact_name=None, contact_phone=None),
        )
    ).json()
    code = filed["query_code"]
    assert code and len(code) == 8
    ok = await client.get(
        f"/api/v1/track/{filed['tracking_no']}", params={"query_code": code.lower()}
    )
    assert ok.status_code == 200 and ok.json()["status"] == "submitted"
    assert ok.json()["contact_phone"] is None and ok.json()["media"] == []
    wrong = await client.get(
        f"/api/v1/track/{filed['tracking_no']}", params={"query_code": "WRONG234"}
    )
    assert wrong.status_code == 404 and wrong.json()["error"] == "complaint_not_found"
    real = (await client.post("/api/v1/complaints", headers=h, json=payload())).json()
    assert (
        await client.get(f"/api/v1/track/{real['tracking_no']}", params={"query_code": code})
    ).status_code == 404


async def test_another_resident_gets_404(client: AsyncClient) -> None:
    owner, other = await login(client, "owner"), await login(client, "nosy")
    filed = (await client.post("/api/v1/complaints", headers=owner, json=payload())).json()
    assert (await client.get(f"/api/v1/complaints/{filed['id']}", headers=other)).status_code == 404
    sup = await client.post(
        f"/api/v1/complaints/{filed['id']}/supplements",
        headers=other,
        json={"content": "我也要补充"},
    )
    assert sup.status_code == 404
    assert (await client.get("/api/v1/complaints/" + "0" * 32, headers=owner)).status_code == 404
    assert (await client.get("/api/v1/complaints/mine", headers=other)).json()["items"] == []


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"item_code": "9999"}, 404, "item_not_found"),
        ({"region_code": "511702005000"}, 400, "bad_request"),  # a street, not a community
        ({"region_code": "511799999999"}, 404, "region_not_found"),
        ({"content": "短"}, 422, None),
        ({"content": "字" * 2001}, 422, None),
        ({"contact_phone": None}, 422, None),
        ({"contact_phone": "12345"}, 422, None),
        ({"anonymous": True}, 422, None),  # with name and phone
        ({"media_ids": ["a" * 32]}, 404, "media_not_found"),
        ({"media_ids": ["x", "x"]}, 422, None),
        ({"location": {"lat": 200, "lng": 0}}, 422, None),
        ({"item_code": "01"}, 422, None),
    ],
)
async def test_bad_filings_are_refused_and_nothing_is_half_written(
    client: AsyncClient,
    connection: AsyncConnection,
    changes: dict[str, Any],
    status: int,
    error: str | None,
) -> None:
    h = await login(client, "bad")
    before = await counts(connection)
    resp = await client.post("/api/v1/complaints", headers=h, json=payload(**changes))
    assert resp.status_code == status, resp.text
    if error:
        assert resp.json()["error"] == error
    assert await counts(connection) == before


async def test_media_rules(client: AsyncClient) -> None:
    h, other = await login(client, "media"), await login(client, "thief")
    theirs = await upload(client, other, mediafiles.wav(), "voice")
    assert (
        await client.post("/api/v1/complaints", headers=h, json=payload(media_ids=[theirs]))
    ).status_code == 404
    images = [await upload(client, h, mediafiles.png(), "image") for _ in range(10)]
    too_many = await client.post("/api/v1/complaints", headers=h, json=payload(media_ids=images))
    assert too_many.status_code == 400 and "9" in too_many.json()["detail"]
    used = images[0]
    assert (
        await client.post("/api/v1/complaints", headers=h, json=payload(media_ids=[used]))
    ).status_code == 201
    again = await client.post("/api/v1/complaints", headers=h, json=payload(media_ids=[used]))
    assert again.status_code == 409
    pending = (
        await client.post(
            "/api/v1/media/upload-tickets",
            headers=h,
            json={"kind": "voice", "content_type": "audio/amr", "size": 10},
        )
    ).json()
    assert (
        await client.post(
            "/api/v1/complaints", headers=h, json=payload(media_ids=[pending["media_id"]])
        )
    ).status_code == 409


async def test_tracking_numbers_count_up_per_day(client: AsyncClient, clock: FixedClock) -> None:
    h = await login(client, "seq")
    a = (await client.post("/api/v1/complaints", headers=h, json=payload())).json()["tracking_no"]
    b = (await client.post("/api/v1/complaints", headers=h, json=payload())).json()["tracking_no"]
    assert a[:10] == b[:10] and int(b[-6:]) == int(a[-6:]) + 1
    clock.advance(timedelta(days=1))
    h = await login(client, "seq")  # yesterday's access token has expired
    resp = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert resp.status_code == 201, resp.text
    c = resp.json()["tracking_no"]
    assert c[2:10] != a[2:10] and c.endswith("-000001")


async def test_filing_is_rate_limited_per_resident(client: AsyncClient) -> None:
    h = await login(client, "spam")
    statuses = [
        (await client.post("/api/v1/complaints", headers=h, json=payload())).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [201] * 10 and statuses[10] == 429


async def test_supplement_after_closure_is_refused(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, "closed")
    filed = (await client.post("/api/v1/complaints", headers=h, json=payload())).json()
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await s.execute(
            update(Complaint)
            .where(Complaint.id == filed["id"])
            .values(status=ComplaintStatus.closed)
        )
        await s.commit()
    resp = await client.post(
        f"/api/v1/complaints/{filed['id']}/supplements", headers=h, json={"content": "还有情况"}
    )
    assert resp.status_code == 409 and resp.json()["error"] == "complaint_closed"


async def test_an_accusation_against_a_township_official_goes_to_the_county(
    client: AsyncClient,
) -> None:
    h = await login(client, "accuse")
    filed = (
        await client.post("/api/v1/complaints", headers=h, json=payload(accused_level="township"))
    ).json()
    assert filed["unit"]["name"] == "通川区纪委监委"


async def test_filing_needs_a_resident_login(client: AsyncClient) -> None:
    assert (await client.post("/api/v1/complaints", json=payload())).status_code == 401
