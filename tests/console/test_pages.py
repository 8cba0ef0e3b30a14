"""The console's pages against the same rules as the API, in-process on SQLite
and PostgreSQL: scope (404), the actions offered, stale versions, bad input,
intake and its receipt, the inbox, and assets that never leave this host."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.console.helpers import VERSION, intake_form, signed_in
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

OTHER_UNIT = "XZ-511702001"  # 东城街道纪工委
COUNTY = "511702000000"
STALE = "案件已被他人处理，已显示最新状态"


@dataclass
class Team:
    sup: dict[str, str]  # API headers of the town's supervisor (c.sup)


@pytest.fixture
async def team(client: AsyncClient, connection: AsyncConnection) -> Team:
    await make_staff(connection, "c.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "c.sup2", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "c.lead", StaffRole.leader, unit_code=TOWN_UNIT)
    await make_staff(connection, "c.other", StaffRole.supervisor, unit_code=OTHER_UNIT)
    await make_staff(
        connection, "c.edu", StaffRole.handler, department_code="D001", region_code=COUNTY
    )
    await make_staff(
        connection, "c.agri", StaffRole.handler, department_code="D037", region_code=COUNTY
    )
    await make_staff(connection, "c.agent", StaffRole.agent, unit_code=TOWN_UNIT)
    return Team(sup=await login(client, "c.sup"))


def offered(html: str) -> set[str]:
    return set(re.findall(r'id="action-([a-z_]+)"', html))


async def test_a_case_out_of_scope_is_404_like_a_missing_one(
    client: AsyncClient, team: Team
) -> None:
    filed = await file_case(client, await citizen(client, "r1"))
    cid = filed["id"]
    await act(client, team.sup, cid, "accept", 1)
    moved = await act(
        client, team.sup, cid, "transfer", 2, department_code="D001", department_region_code=COUNTY
    )
    assert moved.status_code == 200, moved.text
    for username in ("c.other", "c.agri"):
        client.cookies.clear()
        token = await signed_in(client, username)
        out_of_scope = await client.get(f"/console/complaints/{cid}")
        missing = await client.get(f"/console/complaints/{'0' * 32}")
        assert out_of_scope.status_code == missing.status_code == 404
        assert out_of_scope.text == missing.text
        assert filed["tracking_no"] not in out_of_scope.text
        for path in (f"/console/complaints/{cid}/receipt",):
            assert (await client.get(path)).status_code == 404
        post = await client.post(
            f"/console/complaints/{cid}/actions/reply",
            data={"csrf_token": token, "expected_version": "3", "note": "x", "public_reply": "x"},
        )
        assert post.status_code == 404
        queue = await client.get("/console/queue")
        assert filed["tracking_no"] not in queue.text
    client.cookies.clear()
    await signed_in(client, "c.edu")
    assert (await client.get(f"/console/complaints/{cid}")).status_code == 200
    assert (await client.get("/console/complaints/not-an-id")).status_code == 404


async def test_the_page_offers_exactly_the_actions_allowed_now(
    client: AsyncClient, team: Team
) -> None:
    cid = (await file_case(client, await citizen(client, "r1")))["id"]
    await signed_in(client, "c.sup")
    page = await client.get(f"/console/complaints/{cid}")
    assert offered(page.text) == {"accept", "reject", "escalate", "reclassify"}
    client.cookies.clear()
    await signed_in(client, "c.agent")  # filed nothing: sees nothing
    assert (await client.get(f"/console/complaints/{cid}")).status_code == 404
    client.cookies.clear()
    await signed_in(client, "c.lead")
    await act(client, team.sup, cid, "accept", 1)
    await act(client, team.sup, cid, "resolve", 2, note="已整改", public_reply="已整改")
    page = await client.get(f"/console/complaints/{cid}")
    assert offered(page.text) == {"sign", "reopen"}
    slots = re.findall(r'<option value="([a-z_]+)">', page.text.split('id="action-sign"')[1])
    assert {"supervising_leader", "principal_leader"} <= set(slots)
    assert "handler" not in slots  # a leader signs only the leaders' slots


async def test_acting_through_the_page_and_a_stale_form(client: AsyncClient, team: Team) -> None:
    cid = (await file_case(client, await citizen(client, "r1")))["id"]
    token = await signed_in(client, "c.sup")
    page = await client.get(f"/console/complaints/{cid}")
    version = VERSION.search(page.text)
    assert version and version.group(1) == "1"
    # Someone else accepts first, through the API.
    other = await login(client, "c.sup2")
    assert (await act(client, other, cid, "accept", 1)).status_code == 200
    stale = await client.post(
        f"/console/complaints/{cid}/actions/accept",
        data={"csrf_token": token, "expected_version": "1", "note": "我来受理"},
    )
    assert stale.status_code == 409
    assert STALE in stale.text
    assert "已受理" in stale.text and 'value="2"' in stale.text  # the fresh state
    assert "accept" not in offered(stale.text)
    assert (await case(client, team.sup, cid))["version"] == 2  # nothing lost, nothing added


async def test_bad_action_input_is_a_page_not_a_500(client: AsyncClient, team: Team) -> None:
    cid = (await file_case(client, await citizen(client, "r1")))["id"]
    token = await signed_in(client, "c.sup")
    url = f"/console/complaints/{cid}/actions"
    cases = [
        ("accept", {"expected_version": "abc"}, 422),
        ("accept", {"expected_version": "99999999999999999999"}, 422),
        ("accept", {"expected_version": "1", "note": "x" * 5000}, 422),
        ("accept", {"expected_version": "1", "note": "坏\x00字符"}, 422),
        ("explode", {"expected_version": "1"}, 404),
        ("escalate", {"expected_version": "1"}, 400),  # a reason is required
        ("resolve", {"expected_version": "1", "note": "x"}, 409),  # not from submitted
    ]
    for action, data, status in cases:
        resp = await client.post(f"{url}/{action}", data={"csrf_token": token, **data})
        assert resp.status_code == status, (action, data, resp.text[:500])
        assert resp.headers["content-type"].startswith("text/html")
    assert (await case(client, team.sup, cid))["version"] == 1
    # Bad queue filters are answered, never a 500.
    for query in ("status=galaxy", "card=purple", "item_code=12", "region_code=1", "cursor=²³"):
        resp = await client.get(f"/console/queue?{query}")
        assert resp.status_code in (400, 422), (query, resp.status_code)


async def test_queue_filters_counts_and_paging(client: AsyncClient, team: Team) -> None:
    h = await citizen(client, "r1")
    ids = [(await file_case(client, h))["id"] for _ in range(3)]
    await act(client, team.sup, ids[0], "accept", 1)
    cadre = await login(client, "c.sup2")
    me = (await client.get("/api/v1/staff/me", headers=cadre)).json()["id"]
    await act(client, team.sup, ids[0], "assign", 2, cadre_id=me)
    await act(client, team.sup, ids[1], "accept", 1)
    await act(client, team.sup, ids[1], "resolve", 2, note="已办结", public_reply="已办结")

    await signed_in(client, "c.sup2")
    page = await client.get("/console/queue")
    assert all(i in page.text for i in ids)
    mine = await client.get("/console/queue?mine=1&status=&card=")  # empty fields mean any
    for cid in ids:  # routing assigns a cadre at filing too: read who has each
        assigned = (await case(client, team.sup, cid))["cadre_id"] == me
        assert (cid in mine.text) is assigned, cid
    assert ids[0] in mine.text
    to_sign = await client.get("/console/queue?to_sign=1")
    assert ids[1] in to_sign.text and ids[0] not in to_sign.text
    status = await client.get("/console/queue?status=submitted")
    assert ids[2] in status.text and ids[0] not in status.text
    counts = re.findall(r'card-none">无牌</span><strong>(\d+)</strong>', page.text)
    assert counts and int(counts[0]) >= 3
    # htmx asks for the results only.
    partial = await client.get(
        "/console/queue?status=submitted",
        headers={"HX-Request": "true", "HX-Target": "queue-results"},
    )
    assert partial.text.lstrip().startswith('<section id="queue-results"')
    # Keyset paging follows the queue service's cursor.
    for i in range(30):  # offline intake: no resident rate limit
        r = await client.post(
            "/api/v1/staff/complaints",
            headers=team.sup,
            json={
                "channel": "visit",
                "item_code": "0103",
                "region_code": VILLAGE,
                "content": f"来访反映第{i}件事情，请核实处理",
                "reporter_name": "王大爷",
                "reporter_phone": "13800002222",
            },
        )
        assert r.status_code == 201, r.text
    first = await client.get("/console/queue")
    nxt = re.search(r'href="(/console/queue\?cursor=[^"]+)"', first.text)
    assert nxt
    second = await client.get(nxt.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    page1 = set(re.findall(r"/console/complaints/([0-9a-f]{32})", first.text))
    page2 = set(re.findall(r"/console/complaints/([0-9a-f]{32})", second.text))
    assert page1 and page2 and not page1 & page2


async def test_handler_sees_no_identity_of_an_accuser(client: AsyncClient, team: Team) -> None:
    filed = await file_case(client, await citizen(client, "r1"), item_code="0101")
    cid = filed["id"]
    await act(client, team.sup, cid, "accept", 1)
    await act(
        client, team.sup, cid, "transfer", 2, department_code="D001", department_region_code=COUNTY
    )
    await signed_in(client, "c.edu")
    page = await client.get(f"/console/complaints/{cid}")
    assert "李大姐" in page.text  # a plain complaint: the handler may see the name
    accusation = await file_case(
        client,
        await citizen(client, "r2"),
        item_code="0101",
        content="村主任把修路的钱挪去自己家里用了，大家都知道，请查一查。",
        contact_name="王举报",
        contact_phone="13911112222",
        accused_level="village",
    )
    accepted = await act(client, team.sup, accusation["id"], "accept", 1)
    assert accepted.status_code == 200, accepted.text
    moved = await act(
        client,
        team.sup,
        accusation["id"],
        "transfer",
        2,
        department_code="D001",
        department_region_code=COUNTY,
    )
    assert moved.status_code == 200, moved.text
    page = await client.get(f"/console/complaints/{accusation['id']}")
    assert page.status_code == 200
    assert "王举报" not in page.text and "13911112222" not in page.text
    assert "1391111" not in page.text and "身份受保护" in page.text
    queue = await client.get("/console/queue")
    assert accusation["tracking_no"] in queue.text and "王举报" not in queue.text


async def test_offline_intake_and_its_receipt(client: AsyncClient, team: Team) -> None:
    token = await signed_in(client, "c.agent")
    form = await client.get("/console/intake")
    assert form.status_code == 200
    form_id = re.search(r'name="form_id" value="([^"]+)"', form.text)
    assert form_id
    data = {**intake_form(token, form_id.group(1), VILLAGE), "priority_flags": "elderly"}
    bad = await client.post("/console/intake", data={**data, "content": "短"})
    assert bad.status_code == 422 and "反映内容" in bad.text
    assert "王大爷" in bad.text  # what was typed is kept
    done = await client.post("/console/intake", data=data)
    assert done.status_code == 201, done.text[:2000]
    tracking = re.search(r"[A-Z]{2}\d{8}-\d{6}", done.text)
    assert tracking and "受理回执" in done.text
    # The receipt carries a query code (shown this once) and the tracking page's QR code.
    code = re.search(r'<span class="code">([2-9A-Z]{8})</span>', done.text)
    assert code and "<svg" in done.text and "/track?no=" + tracking.group(0) in done.text
    followed = await client.get(
        f"/api/v1/track/{tracking.group(0)}", params={"query_code": code.group(1)}
    )
    assert followed.status_code == 200 and followed.json()["tracking_no"] == tracking.group(0)
    again = await client.post("/console/intake", data=data)  # a reload
    assert again.status_code == 303 and again.headers["location"].endswith("/receipt")
    reprint = await client.get(again.headers["location"])
    assert tracking.group(0) in reprint.text and "已经提交过" in reprint.text
    assert code.group(1) not in reprint.text  # shown once, stored hashed
    listed = await client.get("/api/v1/staff/complaints", headers=await login(client, "c.agent"))
    assert [i["tracking_no"] for i in listed.json()["items"]].count(tracking.group(0)) == 1
    # A handler may not register.
    client.cookies.clear()
    await signed_in(client, "c.edu")
    assert (await client.get("/console/intake")).status_code == 403


async def test_inbox_lists_notices_orders_and_pending_extensions(
    client: AsyncClient, team: Team
) -> None:
    cid = (await file_case(client, await citizen(client, "r1")))["id"]
    await act(client, team.sup, cid, "accept", 1)
    await act(
        client, team.sup, cid, "transfer", 2, department_code="D001", department_region_code=COUNTY
    )
    edu = await login(client, "c.edu")
    await act(client, edu, cid, "extend", 3, days=5, note="需等待审计结果")
    order = await client.post(
        "/api/v1/staff/supervision-orders",
        headers=team.sup,
        json={"complaint_id": cid, "reason": "请加快办理"},
    )
    assert order.status_code == 201, order.text
    token = await signed_in(client, "c.lead")
    inbox = await client.get("/console/inbox")
    assert "申请延长 5 个工作日" in inbox.text
    assert "请加快办理" in inbox.text
    notice = re.search(r'action="/console/inbox/notices/(\d+)/read"', inbox.text)
    assert notice  # the order notified the unit's leaders
    read = await client.post(notice.group(0)[8:-1], data={"csrf_token": token})
    assert read.status_code == 303
    assert notice.group(0) not in (await client.get("/console/inbox")).text
    # Another staff member's notice is 404, like a missing one.
    client.cookies.clear()
    other = await signed_in(client, "c.other")
    path = notice.group(0)[8:-1]
    assert (await client.post(path, data={"csrf_token": other})).status_code == 404
    missing = await client.post("/console/inbox/notices/99999999/read", data={"csrf_token": other})
    assert missing.status_code == 404


async def test_no_page_or_asset_references_another_host(client: AsyncClient, team: Team) -> None:
    cid = (await file_case(client, await citizen(client, "r1")))["id"]
    login_page = await client.get("/console/login")
    await signed_in(client, "c.sup")
    pages = [
        "/console/queue",
        f"/console/complaints/{cid}",
        "/console/intake",
        "/console/inbox",
        "/docs",
        "/redoc",
    ]
    seen_assets: set[str] = set()
    for path in ["/console/login", *pages]:
        resp = login_page if path == "/console/login" else await client.get(path)
        assert resp.status_code == 200, path
        for url in re.findall(r'(?:src|href|action)=["\']([^"\']+)', resp.text):
            assert not urlsplit(url).netloc, (path, url)
            if url.startswith("/static/"):
                seen_assets.add(url)
        assert "cdn.jsdelivr" not in resp.text and "googleapis" not in resp.text, path
    assert any("htmx" in a for a in seen_assets)
    assert any("swagger-ui-bundle" in a for a in seen_assets)
    assert any("redoc.standalone" in a for a in seen_assets)
    for asset in seen_assets:
        resp = await client.get(asset)
        assert resp.status_code == 200, asset
        if asset.split("?")[0].endswith(".css"):
            for url in re.findall(r"url\(([^)]+)\)", resp.text):
                url = url.strip("'\"")
                assert url.startswith(("data:", "#")) or not urlsplit(url).netloc, (asset, url)
            assert "@import" not in resp.text
