"""The dashboard against the API, in-process on SQLite and PostgreSQL: every
figure equals ``/staff/stats/overview`` for the same filter, and the queue it
links to holds exactly that many cases (and, where the test knows them, exactly
those); the ledger button exports that same filter."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from app.workflow.cohort import METRIC_LABELS
from tests.console.helpers import signed_in
from tests.factories import make_staff
from tests.stats.scenario import close, rate, relogin, resolved_case, staff
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

COUNTY = "511702000000"
TZ = ZoneInfo("Asia/Shanghai")
TILE = re.compile(
    r'href="([^"]+)" data-metric="([a-z_]+)"><span class="tile-label">[^<]*</span>'
    r'<strong class="tile-value">(\d+)</strong>'
)
TRACKING = re.compile(r'<a class="tracking" href="/console/complaints/([0-9a-f]{32})">')
TOTAL = re.compile(r'<strong id="cohort-total">(\d+)</strong>')


def tiles(html: str) -> dict[str, tuple[str, int]]:
    return {m: (unescape(link), int(n)) for link, m, n in TILE.findall(html)}


async def world(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> dict[str, str]:
    """Cases in every state the figures tell apart; returns name → case id."""
    s = await staff(client, connection)
    r1, r2, r3 = [await citizen(client, f"dash.r{i}") for i in (1, 2, 3)]
    ids: dict[str, str] = {}
    ids["closed"] = (await file_case(client, r1))["id"]
    await close(client, s, ids["closed"])
    ids["reopened"] = await resolved_case(client, s, r2)
    await rate(client, r2, ids["reopened"], 1, "unsatisfied")  # reopens it
    ids["submitted"] = (await file_case(client, r3))["id"]
    ids["accepted"] = (
        await file_case(client, r3, contact_name="王五", contact_phone="13700002222")
    )["id"]
    v = (await case(client, s.zhang, ids["accepted"]))["version"]
    assert (await act(client, s.zhang, ids["accepted"], "accept", v)).status_code == 200
    # Much later: the open cases are overdue now.
    clock.set(clock.now() + timedelta(days=60))
    return ids


async def test_every_figure_equals_the_api_and_links_to_exactly_its_cases(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    ids = await world(client, connection, clock)
    s = await relogin(client)
    await make_staff(connection, "dash.lead", StaffRole.leader, unit_code="JW-511702")
    await signed_in(client, "dash.lead")
    start = (clock.now() - timedelta(days=90)).date().isoformat()
    end = clock.now().date().isoformat()
    page = await client.get(
        "/console/dashboard", params={"region_code": COUNTY, "from": start, "to": end}
    )
    assert page.status_code == 200, page.text
    api = await client.get(
        "/api/v1/staff/stats/overview",
        params={"region_code": COUNTY, "from": start, "to": end},
        headers=s.county,
    )
    totals = api.json()["totals"]
    shown = tiles(page.text)
    assert set(shown) == set(METRIC_LABELS)
    for metric, (link, n) in shown.items():
        assert n == totals[metric], metric
        queue = await client.get(link)
        assert queue.status_code == 200, (metric, queue.text)
        found = TOTAL.search(queue.text)
        assert found and int(found.group(1)) == n, (metric, link)
        assert len(set(TRACKING.findall(queue.text))) == n, metric
    assert totals["received"] == 4 and totals["closed"] == 1
    expected = {
        "closed": {ids["closed"]},
        "reopened": {ids["reopened"]},
        "open_overdue": {ids["reopened"], ids["submitted"], ids["accepted"]},
        "unsatisfied": {ids["reopened"]},
    }
    for metric, want in expected.items():
        queue = await client.get(shown[metric][0])
        assert set(TRACKING.findall(queue.text)) == want, metric

    # Breakdown rows: each "received" figure leads to that many cases, the
    # unit and category rows over whole months as the API counts them there.
    for table, rows in (("t-unit", "by_unit"), ("t-cat", "by_category"), ("t-town", "by_region")):
        section = page.text.split(f'id="{table}"')[1].split("</table>")[0]
        links = re.findall(r'data-label="收到"><a href="([^"]+)">(\d+)</a>', section)
        assert [int(n) for _, n in links] == [b["figures"]["received"] for b in api.json()[rows]]
        for link, n in links:
            found = TOTAL.search((await client.get(unescape(link))).text)
            assert found and int(found.group(1)) == int(n), (table, link)

    # From the day after every receipt, in the same month: nothing received in
    # the period, yet the unit breakdown (whole months) counts them all, and
    # its link shows them all.
    late = {"region_code": COUNTY, "from": "2026-11-25", "to": end}
    page2 = await client.get("/console/dashboard", params=late)
    api2 = (await client.get("/api/v1/staff/stats/overview", params=late, headers=s.county)).json()
    assert api2["totals"]["received"] == 0 and api2["by_unit"][0]["figures"]["received"] == 4
    section = page2.text.split('id="t-unit"')[1].split("</table>")[0]
    link, n = re.findall(r'data-label="收到"><a href="([^"]+)">(\d+)</a>', section)[0]
    assert int(n) == 4 and "from=2026-11-01" in unescape(link)
    found = TOTAL.search((await client.get(unescape(link))).text)
    assert found and int(found.group(1)) == 4
    assert "按整月计" in page2.text

    # The ledger button exports exactly the dashboard's filter: the cases received.
    ledger_link = unescape(re.search(r'href="(/console/ledger\.xlsx[^"]*)"', page.text).group(1))
    xlsx = await client.get(ledger_link)
    assert xlsx.status_code == 200
    rows = list(
        load_workbook(io.BytesIO(xlsx.content), read_only=True).active.iter_rows(values_only=True)
    )
    tracking = {row[0] for row in rows[1:]}
    want_tracking = {(await case(client, s.county, cid))["tracking_no"] for cid in ids.values()}
    assert tracking == want_tracking


CB_FORM = re.compile(r'action="/console/callbacks/(\d+)/(\d+)"')


async def test_a_commission_draws_a_sample_and_records_a_call(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    cid = (await file_case(client, await citizen(client, "dash.cb")))["id"]
    await close(client, s, cid)
    await make_staff(connection, "dash.jw", StaffRole.supervisor, unit_code="JW-511702")
    csrf = await signed_in(client, "dash.jw")
    listing = await client.get("/console/callbacks")
    assert listing.status_code == 200 and "抽取样本" in listing.text
    drawn = await client.post(
        "/console/callbacks/draw", data={"csrf_token": csrf, "quarter": "2026Q4"}
    )
    assert drawn.status_code == 303, drawn.text
    page = await client.get(drawn.headers["location"])
    assert page.status_code == 200
    forms = CB_FORM.findall(page.text)
    assert forms, page.text
    draw_id, cb_id = forms[0]
    # A form mistake is named and nothing is written.
    bad = await client.post(
        f"/console/callbacks/{draw_id}/{cb_id}",
        data={"csrf_token": csrf, "method": "phone", "reached": "no", "resolved": "yes"},
    )
    assert bad.status_code == 303
    assert "未联系上群众时" in unescape((await client.get(bad.headers["location"])).text)
    done = await client.post(
        f"/console/callbacks/{draw_id}/{cb_id}",
        data={
            "csrf_token": csrf,
            "method": "phone",
            "reached": "yes",
            "resolved": "yes",
            "satisfaction": "satisfied",
            "note": "群众表示公示栏已更新",
        },
    )
    assert done.status_code == 303
    after = await client.get(f"/console/callbacks/{draw_id}")
    assert "已记录回访结果" in after.text and "群众表示公示栏已更新" in after.text
    assert f'action="/console/callbacks/{draw_id}/{cb_id}"' not in after.text
    api = await client.get(f"/api/v1/staff/callbacks?draw_id={draw_id}", headers=s.county)
    assert {cb["status"] for cb in api.json()["items"] if cb["id"] == int(cb_id)} == {"done"}
    # Without the CSRF token: refused.
    no_token = await client.post("/console/callbacks/draw", data={"quarter": "2026Q4"})
    assert no_token.status_code == 403

    # The audited unit's supervisor: no menu entry, 403 for the list, 404 for
    # the draw (as from the API) and for recording; no form anywhere.
    client.cookies.clear()
    csrf = await signed_in(client, "st.zhang")
    inbox = await client.get("/console/inbox")
    assert "/console/callbacks" not in inbox.text
    assert (await client.get("/console/callbacks")).status_code == 403
    theirs = await client.get(f"/console/callbacks/{draw_id}")
    assert theirs.status_code == 404 and "/console/callbacks/" not in theirs.text.split("<main")[1]
    record = await client.post(
        f"/console/callbacks/{draw_id}/{cb_id}",
        data={"csrf_token": csrf, "method": "phone", "reached": "yes"},
    )
    assert record.status_code == 404


async def test_identity_search_is_for_the_supervision_side_and_never_in_a_url(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "dash.search")
    plain = (await file_case(client, r, contact_name="钱七", contact_phone="13611112222"))["id"]
    accused = (
        await file_case(
            client, r, contact_name="孙八", contact_phone="13633334444", accused_level="village"
        )
    )["id"]
    other = (await file_case(client, r, contact_name="周九", contact_phone="13655556666"))["id"]
    csrf = await signed_in(client, "st.zhang")
    queue = await client.get("/console/queue")
    assert 'action="/console/queue/search"' in queue.text
    by_name = await client.post("/console/queue/search", data={"csrf_token": csrf, "name": "钱七"})
    assert by_name.status_code == 200
    assert set(TRACKING.findall(by_name.text)) == {plain}
    by_phone = await client.post(
        "/console/queue/search", data={"csrf_token": csrf, "phone": "13633334444"}
    )
    assert set(TRACKING.findall(by_phone.text)) == {accused}
    # The accuser's name is sealed: a name finds ordinary cases only.
    sealed = await client.post("/console/queue/search", data={"csrf_token": csrf, "name": "孙八"})
    assert TRACKING.findall(sealed.text) == []
    assert other not in by_name.text
    bad = await client.post("/console/queue/search", data={"csrf_token": csrf, "phone": "abc\x00"})
    assert bad.status_code == 400
    # Finding an accusation by phone is recorded as a read of its filer's identity.
    events = (await case(client, s.county, accused))["events"]
    assert any(e["kind"] == "identity_viewed" for e in events)

    v = (await case(client, s.zhang, plain))["version"]
    await act(client, s.zhang, plain, "accept", v)
    v += 1
    moved = await act(
        client,
        s.zhang,
        plain,
        "transfer",
        v,
        department_code="D001",
        department_region_code=COUNTY,
    )
    assert moved.status_code == 200, moved.text
    await make_staff(
        connection, "dash.edu", StaffRole.handler, department_code="D001", region_code=COUNTY
    )
    client.cookies.clear()
    csrf = await signed_in(client, "dash.edu")
    queue = await client.get("/console/queue")
    assert queue.status_code == 200 and "/console/queue/search" not in queue.text
    refused = await client.post(
        "/console/queue/search", data={"csrf_token": csrf, "phone": "13611112222"}
    )
    assert refused.status_code == 403
    assert "13611112222" not in refused.text


MARK = re.compile(
    r'href="/console/complaints/([0-9a-f]{32})">[^<]*</a> <span class="mark mark-(new|changed)">'
)


async def test_new_and_changed_cases_are_marked_since_the_last_visit(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "dash.marks")
    old = (await file_case(client, r))["id"]
    touched = (await file_case(client, r))["id"]
    await signed_in(client, "st.zhang")
    first = await client.get("/console/queue")
    assert MARK.findall(first.text) == []  # a first session has nothing to compare with
    client.cookies.clear()

    clock.set(clock.now() + timedelta(hours=1))
    s = await relogin(client)
    r = await citizen(client, "dash.marks")
    new = (await file_case(client, r))["id"]
    v = (await case(client, s.wang, touched))["version"]
    assert (await act(client, s.wang, touched, "accept", v)).status_code == 200
    csrf = await signed_in(client, "st.zhang")
    page = await client.get("/console/queue")
    marks = dict(MARK.findall(page.text))
    assert marks == {new: "new", touched: "changed"}
    assert old not in marks
    # The marks stay while the user works, until they clear them.
    assert dict(MARK.findall((await client.get("/console/queue")).text)) == marks
    cleared = await client.post("/console/queue/seen", data={"csrf_token": csrf})
    assert cleared.status_code == 303
    clock.set(clock.now() + timedelta(minutes=1))
    assert MARK.findall((await client.get("/console/queue")).text) == []
    # A forged "seen" cookie is ignored: the marks come back.
    client.cookies.set("ydt_seen", "9999999999.forged")
    assert dict(MARK.findall((await client.get("/console/queue")).text)) == marks


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/console/dashboard?from=2026-13-01", 400),
        ("/console/dashboard?from=2026-11-30&to=2026-11-01", 400),
        ("/console/dashboard?to=99999-01-01", 400),
        ("/console/dashboard?region_code=5117%00", 422),  # the boundary refuses control chars
        ("/console/dashboard?region_code=" + "9" * 400, 400),
        ("/console/dashboard?from=%F0%9F%98%80", 400),
        ("/console/queue?metric=everything", 400),
        ("/console/queue?unit_id=99999999999", 400),
        ("/console/queue?unit_id=-1", 400),
        ("/console/queue?category=a%0A", 422),
        ("/console/queue?from=NaN", 400),
        ("/console/ledger.xlsx?metric=%00", 422),
        ("/console/ledger.xlsx?metric=all", 400),
        ("/console/callbacks/99999999999", 422),
        ("/console/callbacks/abc", 422),
    ],
)
async def test_hostile_input_is_a_chinese_error_page_never_500(
    client: AsyncClient, connection: AsyncConnection, path: str, status: int
) -> None:
    await make_staff(connection, "dash.bad", StaffRole.supervisor, unit_code="JW-511702")
    await signed_in(client, "dash.bad")
    resp = await client.get(path)
    assert resp.status_code == status, resp.text
    if "%0" not in path:  # control characters never reach the page (app/core/boundary.py)
        assert "text/html" in resp.headers["content-type"]
        assert "Content-Security-Policy" in resp.headers


async def test_bad_form_input_is_refused_without_500(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "dash.bad2", StaffRole.supervisor, unit_code="JW-511702")
    csrf = await signed_in(client, "dash.bad2")
    for quarter in ("2026Q9", "x" * 500, "2026Q1\x00", "2999Q1"):
        resp = await client.post(
            "/console/callbacks/draw", data={"csrf_token": csrf, "quarter": quarter}
        )
        assert resp.status_code == 400, (quarter, resp.text)
    for data in ({"phone": "1" * 400}, {"name": "x\x07"}, {}, {"name": "名" * 40}):
        resp = await client.post("/console/queue/search", data={"csrf_token": csrf, **data})
        assert resp.status_code == 400, (data, resp.text)
    # Another commission's sample is "not found", like a missing one.
    resp = await client.post(
        "/console/callbacks/2147483647/2147483647",
        data={"csrf_token": csrf, "method": "phone", "reached": "yes"},
    )
    assert resp.status_code == 404


async def test_the_queue_exports_its_current_filter(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "dash.export")
    kept = {(await file_case(client, r, item_code="0101"))["id"] for _ in range(2)}
    other = (await file_case(client, r, item_code="0102"))["id"]
    v = (await case(client, s.zhang, other))["version"]
    assert (await act(client, s.zhang, other, "accept", v)).status_code == 200
    await signed_in(client, "st.zhang")
    page = await client.get("/console/queue", params={"status": "submitted", "item_code": "0101"})
    assert page.status_code == 200
    shown = set(TRACKING.findall(page.text))
    assert kept <= shown and other not in shown
    link = unescape(re.search(r'href="(/console/ledger\.xlsx[^"]*)"', page.text).group(1))
    assert "status=submitted" in link and "item_code=0101" in link
    xlsx = await client.get(link)
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    exported = {row[0] for row in list(sheet.iter_rows(values_only=True))[1:]}
    want = {(await case(client, s.zhang, cid))["tracking_no"] for cid in shown}
    assert exported == want


async def test_alerts_show_the_cases_behind_them(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await staff(client, connection)
    filed = [
        (await file_case(client, await citizen(client, f"dash.cluster{i}")))["id"] for i in range(5)
    ]
    await make_staff(connection, "dash.lead2", StaffRole.leader, unit_code="JW-511702")
    await signed_in(client, "dash.lead2")
    page = await client.get("/console/dashboard")
    assert page.status_code == 200
    alerts = page.text.split('id="h-alerts"')[1]
    assert "类案预警" in alerts
    assert set(TRACKING.findall(alerts)) == set(filed)
    # Red and black lists explain themselves: every unit with its reasons.
    lists = page.text.split('id="h-lists"')[1].split('id="h-alerts"')[0]
    assert "综合得分" in lists and "凤北街道纪工委" in lists


async def test_the_dashboard_says_as_of_when_and_warns_when_statistics_trail(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    """Statistics follow the case log through the projector (app/stats/projector.py):
    the page says up to when they count, and says plainly when they trail by more
    than YDT_PROJECTOR_LAG_WARN_SECONDS (the worker is probably not running)."""
    await make_staff(connection, "dash.asof", StaffRole.leader, unit_code="JW-511702")
    await signed_in(client, "dash.asof")
    filed_at = clock.now()
    await file_case(client, await citizen(client, "dash.asof.r"))  # queued, not applied
    clock.set(filed_at + timedelta(minutes=10))
    # A client without the suite's drain-before-request hook: the projector is "down".
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://testserver", cookies=client.cookies
    ) as stale:
        page = await stale.get("/console/dashboard")
    assert page.status_code == 200, page.text
    as_of = re.search(r'<p class="hint" id="as-of">(.*?)</p>', page.text, re.S)
    assert as_of is not None
    assert "数据截至 " + filed_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S") in as_of.group(1)
    assert "滞后约 10 分钟" in as_of.group(1) and "ydt worker" in as_of.group(1)
    caught_up = await client.get("/console/dashboard")  # drained: as of now, no warning
    fresh = re.search(r'<p class="hint" id="as-of">(.*?)</p>', caught_up.text, re.S)
    assert fresh is not None and "滞后" not in fresh.group(1)
    assert clock.now().astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S") in fresh.group(1)
