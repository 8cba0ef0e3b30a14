"""The dashboard against the API, in-process on SQLite and PostgreSQL: every
figure equals ``/staff/stats/overview`` for the same filter, and the queue it
links to holds exactly that many cases (and, where the test knows them, exactly
those); the ledger button exports that same filter."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape

import pytest
from httpx import AsyncClient
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
