"""Duplicate hints, following, the staff's duplicate list, merge and unmerge,
end to end on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import ComplaintMerge, Notification, StatsDaily
from app.stats import projector, rollup
from tests.audit.helpers import about, audit
from tests.conftest import DEFAULT_NOW
from tests.stats.scenario import close, staff
from tests.stats.test_rebuild import open_due, snapshot
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

OTHER_VILLAGE = "511702001001"
LAMP = "我们3组通往学校那段路的路灯坏了快一个月了，晚上娃儿放学黑黢黢的，好危险"
LAMP_AGAIN = "三组通往学校那段路的路灯一直不亮，晚上娃儿放学看不到路，喊村上修也没人管"
OTHER = "村里的低保名单上有开了两个门市的人，真正困难的反而没评上"


async def similar(client: AsyncClient, h: dict[str, str], **kw: Any) -> list[dict[str, Any]]:
    body = {"region_code": "511702005001", "item_code": "0101", "content": LAMP_AGAIN, **kw}
    resp = await client.post("/api/v1/complaints/similar", headers=h, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["prompt"]
    return resp.json()["items"]  # type: ignore[no-any-return]


async def notices(connection: AsyncConnection, complaint_id: str, kind: str) -> list[Notification]:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        rows = await s.execute(
            select(Notification).where(
                Notification.complaint_id == complaint_id,
                Notification.kind == kind,
                Notification.recipient_kind == "citizen",
            )
        )
        return list(rows.scalars())


async def received(connection: AsyncConnection) -> int:
    """Cases counted, once the statistics projector has caught up."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await projector.drain(s, now=DEFAULT_NOW)
        return int((await s.execute(select(func.sum(StatsDaily.received)))).scalar() or 0)


class TestSimilar:
    async def test_a_neighbours_open_case_is_offered_with_public_fields_only(
        self, client: AsyncClient
    ) -> None:
        r1, r2 = await citizen(client, "dup.r1"), await citizen(client, "dup.r2")
        mine = await file_case(client, r1, content=f"{LAMP}。我叫王小明，电话13912345678")
        await file_case(client, r1, content=OTHER)
        found = await similar(client, r2)
        assert [f["id"] for f in found] == [mine["id"]]
        hit = found[0]
        assert hit["tracking_no"] == mine["tracking_no"] and hit["similarity"] >= 0.2
        assert hit["progress"]["label"] == "已提交" and hit["following"] is False
        text = str(hit)
        assert "13912345678" not in text and "王小明" not in text and "李大姐" not in text
        assert "contact_name" not in hit and "content" not in hit

    async def test_accusations_anonymous_cases_and_ones_own_are_never_offered(
        self, client: AsyncClient
    ) -> None:
        r1, r2 = await citizen(client, "dup.r3"), await citizen(client, "dup.r4")
        await file_case(
            client, r1, content=LAMP, anonymous=True, contact_name=None, contact_phone=None
        )
        await file_case(client, r1, content=LAMP, accused_level="village")
        own = await file_case(client, r2, content=LAMP)
        assert await similar(client, r2) == []
        assert [f["id"] for f in await similar(client, r1)] == [own["id"]]

    async def test_a_case_in_the_next_village_counts_only_when_located_nearby(
        self, client: AsyncClient
    ) -> None:
        r1, r2 = await citizen(client, "dup.r5"), await citizen(client, "dup.r6")
        here = {"lat": 31.2, "lng": 107.5, "address": "学校路口"}
        there = await file_case(client, r1, content=LAMP, region_code=OTHER_VILLAGE, location=here)
        assert await similar(client, r2) == []
        near = {"lat": 31.2005, "lng": 107.5}
        assert [f["id"] for f in await similar(client, r2, location=near)] == [there["id"]]
        far = {"lat": 31.3, "lng": 107.5}
        assert await similar(client, r2, location=far) == []

    async def test_a_township_is_not_a_village(self, client: AsyncClient) -> None:
        r = await citizen(client, "dup.r7")
        body = {"region_code": "511702005000", "content": LAMP}
        resp = await client.post("/api/v1/complaints/similar", headers=r, json=body)
        assert resp.status_code == 400


class TestFollow:
    async def test_a_follower_gets_the_cases_notices_until_unfollowing(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        s = await staff(client, connection)
        r1, r2 = await citizen(client, "fo.r1"), await citizen(client, "fo.r2")
        cid = (await file_case(client, r1, content=LAMP))["id"]
        resp = await client.post(f"/api/v1/complaints/{cid}/follow", headers=r2)
        assert resp.status_code == 200 and resp.json() == {
            "complaint_id": cid,
            "following": True,
            "followers": 1,
        }
        again = await client.post(f"/api/v1/complaints/{cid}/follow", headers=r2)
        assert again.json()["followers"] == 1
        assert (await similar(client, r2))[0]["following"] is True
        own = await client.post(f"/api/v1/complaints/{cid}/follow", headers=r1)
        assert own.status_code == 400
        v = (await case(client, s.zhang, cid))["version"]
        accepted = await act(client, s.zhang, cid, "accept", v)
        assert accepted.status_code == 200, accepted.text
        sent = await notices(connection, cid, "accepted")
        assert len(sent) == 2 and len({n.recipient_id for n in sent}) == 2
        gone = await client.delete(f"/api/v1/complaints/{cid}/follow", headers=r2)
        assert gone.json() == {"complaint_id": cid, "following": False, "followers": 0}
        reply = await act(
            client, s.zhang, cid, "reply", accepted.json()["version"], public_reply="正在维修"
        )
        assert reply.status_code == 200
        assert len(await notices(connection, cid, "replied")) == 1

    async def test_protected_and_unknown_cases_cannot_be_followed(
        self, client: AsyncClient
    ) -> None:
        r1, r2 = await citizen(client, "fo.r3"), await citizen(client, "fo.r4")
        anon = await file_case(
            client, r1, content=LAMP, anonymous=True, contact_name=None, contact_phone=None
        )
        accused = await file_case(client, r1, content=LAMP, accused_level="village")
        for cid in (anon["id"], accused["id"], "0" * 32, "x"):
            resp = await client.post(f"/api/v1/complaints/{cid}/follow", headers=r2)
            assert resp.status_code == 404, resp.text
            assert resp.json()["error"] == "complaint_not_found"


class TestMerge:
    async def test_staff_see_the_duplicate_and_merging_counts_it_once(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        s = await staff(client, connection)
        r1, r2 = await citizen(client, "mg.r1"), await citizen(client, "mg.r2")
        parent = (await file_case(client, r1, content=LAMP))["id"]
        await file_case(client, r1, content=OTHER)
        child = (await file_case(client, r2, content=LAMP_AGAIN, contact_phone="13900002222"))["id"]
        dups = await client.get(f"/api/v1/staff/complaints/{child}/duplicates", headers=s.zhang)
        assert dups.status_code == 200, dups.text
        items = dups.json()["items"]
        assert [d["id"] for d in items] == [parent] and items[0]["likely"]
        assert "同村（社区）" in items[0]["reasons"] and "同一事项" in items[0]["reasons"]
        before = await received(connection)
        v = (await case(client, s.zhang, child))["version"]
        stale = await client.post(
            f"/api/v1/staff/complaints/{child}/merge",
            headers=s.zhang,
            json={"parent_id": parent, "expected_version": v + 5},
        )
        assert stale.status_code == 409
        merged = await client.post(
            f"/api/v1/staff/complaints/{child}/merge",
            headers=s.zhang,
            json={"parent_id": parent, "expected_version": v, "note": "同一路段路灯"},
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["child_status"] == "closed" and merged.json()["merged"] is True
        assert await received(connection) == before - 1
        # both chains and both timelines say so
        child_file = await case(client, s.zhang, child)
        parent_file = await case(client, s.zhang, parent)
        assert child_file["events"][-1]["kind"] == "merged"
        assert parent_file["events"][-1]["kind"] == "merge_received"
        mine = (await client.get(f"/api/v1/complaints/{child}", headers=r2)).json()
        assert mine["status"] == "closed"
        assert any(
            e["kind"] == "merged" and parent_file["tracking_no"] in e["note"]
            for e in mine["timeline"]
        )
        theirs = (await client.get(f"/api/v1/complaints/{parent}", headers=r1)).json()
        assert any(e["kind"] == "merge_received" for e in theirs["timeline"])
        assert child not in str(theirs)
        listed = (
            await client.get(f"/api/v1/staff/complaints/{parent}/duplicates", headers=s.zhang)
        ).json()
        assert [c["id"] for c in listed["merged_children"]] == [child]
        # the parent's notices reach the child's complainant
        pv = parent_file["version"]
        assert (await act(client, s.zhang, parent, "accept", pv)).status_code == 200
        assert len(await notices(connection, child, "accepted")) == 1
        again = await client.post(
            f"/api/v1/staff/complaints/{child}/merge",
            headers=s.zhang,
            json={"parent_id": parent, "expected_version": child_file["version"]},
        )
        assert again.status_code == 409
        # unmerge while the parent is open: counted again, reopened
        undone = await client.post(
            f"/api/v1/staff/complaints/{child}/unmerge",
            headers=s.zhang,
            json={"expected_version": child_file["version"], "note": "不是同一路段"},
        )
        assert undone.status_code == 200, undone.text
        assert undone.json()["child_status"] == "reopened"
        assert await received(connection) == before
        async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as sess:
            report = await audit(sess)
            assert not about(report, child) and not about(report, parent)
        live, live_open = await snapshot(connection), await open_due(connection)
        async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as sess:
            await rollup.rebuild(sess)
            await sess.commit()
        assert await snapshot(connection) == live and await open_due(connection) == live_open

    async def test_rollups_rebuilt_from_events_equal_the_live_ones_while_merged(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        s = await staff(client, connection)
        r1, r2 = await citizen(client, "mg.r3"), await citizen(client, "mg.r4")
        parent = (await file_case(client, r1, content=LAMP))["id"]
        child = (await file_case(client, r2, content=LAMP_AGAIN))["id"]
        v = (await case(client, s.zhang, child))["version"]
        resp = await client.post(
            f"/api/v1/staff/complaints/{child}/merge",
            headers=s.zhang,
            json={"parent_id": parent, "expected_version": v},
        )
        assert resp.status_code == 200
        live, live_open = await snapshot(connection), await open_due(connection)
        async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as sess:
            await rollup.rebuild(sess)
            await sess.commit()
        assert await snapshot(connection) == live and await open_due(connection) == live_open

    async def test_the_child_gets_the_rating_request_and_no_unmerge_after_the_parent_closes(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        s = await staff(client, connection)
        r1, r2 = await citizen(client, "mg.r5"), await citizen(client, "mg.r6")
        parent = (await file_case(client, r1, content=LAMP))["id"]
        child = (
            await file_case(
                client,
                r2,
                content=LAMP_AGAIN,
                anonymous=True,
                contact_name=None,
                contact_phone=None,
            )
        )["id"]
        v = (await case(client, s.zhang, child))["version"]
        resp = await client.post(
            f"/api/v1/staff/complaints/{child}/merge",
            headers=s.zhang,
            json={"parent_id": parent, "expected_version": v},
        )
        assert resp.status_code == 200, resp.text
        early = await client.post(
            f"/api/v1/complaints/{child}/rating",
            headers=r2,
            json={"score": 5, "satisfaction": "satisfied"},
        )
        assert early.status_code == 409, early.text
        await close(client, s, parent)
        rating = await notices(connection, child, "resolved")
        # the anonymous child's filer is reached through the child's sealed identity
        assert len(rating) == 1 and rating[0].recipient_id is None and "评价" in rating[0].body
        async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as sess:
            link = await sess.get(ComplaintMerge, child)
            assert link is not None and not hasattr(link, "citizen_id")
        cv = (await case(client, s.zhang, child))["version"]
        late = await client.post(
            f"/api/v1/staff/complaints/{child}/unmerge",
            headers=s.zhang,
            json={"expected_version": cv},
        )
        assert late.status_code == 409 and "主件已办结" in late.json()["detail"]
        before = await snapshot(connection)
        rated = await client.post(
            f"/api/v1/complaints/{child}/rating",
            headers=r2,
            json={"score": 5, "satisfaction": "satisfied"},
        )
        assert rated.status_code == 201, rated.text
        assert await snapshot(connection) == before  # the merged case counts nowhere

    async def test_only_the_childs_unit_supervision_may_merge(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        s = await staff(client, connection)
        r1 = await citizen(client, "mg.r7")
        parent = (await file_case(client, r1, content=LAMP))["id"]
        child = (await file_case(client, r1, content=LAMP_AGAIN))["id"]
        v = (await case(client, s.zhang, child))["version"]
        body = {"parent_id": parent, "expected_version": v}
        county = await client.post(
            f"/api/v1/staff/complaints/{child}/merge", headers=s.county, json=body
        )
        assert county.status_code == 403
        itself = await client.post(
            f"/api/v1/staff/complaints/{child}/merge",
            headers=s.zhang,
            json={"parent_id": child, "expected_version": v},
        )
        assert itself.status_code == 400
        dups = (
            await client.get(f"/api/v1/staff/complaints/{child}/duplicates", headers=s.zhang)
        ).json()
        assert "同一反映人" in dups["items"][0]["reasons"]

    async def test_an_offline_intake_meets_the_same_residents_online_filing_by_phone(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        s = await staff(client, connection)
        r = await citizen(client, "mg.r8")
        online = await file_case(client, r, content=OTHER, contact_phone="138 0000 5555")
        resp = await client.post(
            "/api/v1/staff/complaints",
            headers=s.zhang,
            json={
                "channel": "visit",
                "item_code": "0101",
                "region_code": "511702005001",
                "content": "来访反映：组上的账一直没公开",
                "reporter_name": "赵大哥",
                "reporter_phone": "13800005555",
                "anonymous": False,
                "media_ids": [],
            },
        )
        assert resp.status_code == 201, resp.text
        dups = (
            await client.get(
                f"/api/v1/staff/complaints/{resp.json()['id']}/duplicates", headers=s.zhang
            )
        ).json()
        found = {d["id"]: d for d in dups["items"]}
        assert "同一反映人" in found[online["id"]]["reasons"]
