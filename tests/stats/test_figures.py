"""Every rate checked against figures computed by hand from a known world.

World (all in 凤北街道, one unit), filed on Tue 2026-11-24:
  A  closed on time, rated satisfied 5
  B  closed on time, rated unsatisfied 2 → reopened (still open)
  C  accepted, never closed → overdue at the end
  D  rejected
  E  closed late (after its due date), rated basic 3

Each case counts once, on its receipt day, by its present state (app/stats/rollup.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from tests.factories import login
from tests.stats.scenario import close, rate, relogin, staff
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def test_every_rate_matches_the_hand_computed_figures(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "stats.resident")
    ids = {
        k: (await file_case(client, r, item_code="0101" if k in "ABC" else "0103"))["id"]
        for k in "ABCDE"
    }

    await close(client, s, ids["A"])
    await close(client, s, ids["B"])
    assert (await act(client, s.zhang, ids["C"], "accept", 1)).status_code == 200
    assert (
        await act(client, s.zhang, ids["D"], "reject", 1, note="不属于受理范围")
    ).status_code == 200
    await rate(client, r, ids["A"], 5, "satisfied")
    b = await rate(client, r, ids["B"], 2, "unsatisfied")
    assert b["reopened"] and b["status"] == "reopened"

    due_e = datetime.fromisoformat((await case(client, s.zhang, ids["E"]))["due_at"])
    due_c = datetime.fromisoformat((await case(client, s.zhang, ids["C"]))["due_at"])
    clock.set(max(due_e, due_c) + timedelta(days=1))
    s = await relogin(client)
    r = await citizen(client, "stats.resident")
    await close(client, s, ids["E"])
    await rate(client, r, ids["E"], 3, "basic")

    body = (await client.get("/api/v1/staff/stats/overview", headers=s.zhang)).json()
    t = body["totals"]
    # received 5; accepted A B C E = 4; closed now A E = 2 (B was reopened: open again)
    assert (t["received"], t["accepted"], t["closed"], t["closed_on_time"]) == (5, 4, 2, 1)
    assert (t["rated"], t["satisfied"], t["basic"], t["unsatisfied"], t["reopened"]) == (
        3,
        1,
        1,
        1,
        1,
    )
    # open and overdue now: C (accepted, never closed) and B (reopened, past its due date)
    assert t["open_overdue"] == 2
    assert t["closure_rate"] == round(2 / 5, 4)
    assert t["unsolved"] == 0 and t["solved_rate"] == 1.0  # B, rated unsatisfied, is not closed
    assert t["satisfaction_rate"] == round(2 / 3, 4)
    assert t["mean_score"] == round((5 + 2 + 3) / 3, 2)
    # closed on time A ÷ (closed A E + open and overdue B C): each case once
    assert t["on_time_rate"] == round(1 / (2 + 2), 4)
    assert t["reopen_rate"] == round(1 / 4, 4)  # B, of the four accepted
    assert t["avg_handling_days"] is not None and t["avg_handling_days"] > 0

    cats = {b["key"]: b["figures"] for b in body["by_category"]}
    assert cats["01"]["received"] == 5
    items = {b["key"]: b["figures"]["received"] for b in body["by_item"]}
    assert items == {"0101": 3, "0103": 2}
    assert [b["label"] for b in body["by_unit"]] == ["凤北街道纪工委"]
    # Filed in November; the closures and ratings fall in January, after the clock
    # moved, and count in November, with the cases they belong to.
    months = {b["key"]: b["figures"] for b in body["by_month"]}
    assert list(months) == ["2026-11"]
    assert months["2026-11"]["received"] == 5 and months["2026-11"]["closed"] == t["closed"]
    assert body["by_region"][0]["label"] == "达州市通川区凤北街道"

    public = (await client.get("/api/v1/stats/public?region_code=511702005001")).json()
    assert public["region_name"] == "达州市通川区凤北街道"  # a village reads its township's figures
    assert (public["received"], public["closed"], public["satisfaction_rate"]) == (
        5,
        2,
        round(2 / 3, 4),
    )

    # another township is outside this unit's statistics, not an empty page
    other_town = await client.get(
        "/api/v1/staff/stats/overview?region_code=511702001000", headers=s.zhang
    )
    assert other_town.status_code == 403
    from_county = (
        await client.get("/api/v1/staff/stats/overview?region_code=511702001000", headers=s.county)
    ).json()
    assert from_county["totals"]["received"] == 0
    county = (await client.get("/api/v1/staff/stats/overview", headers=s.county)).json()
    assert county["totals"]["received"] == 5


async def test_a_case_satisfied_after_one_reopening_counts_once(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    """The case of the report (reopen_rate 1.5, solved_rate 0): resolved, rated
    unsatisfied (reopened), resolved again a month later, rated satisfied, closed."""
    s = await staff(client, connection)
    r = await citizen(client, "stats.once")
    cid = (await file_case(client, r))["id"]
    v = (await case(client, s.zhang, cid))["version"]
    for action in ("accept", "resolve"):
        resp = await act(client, s.zhang, cid, action, v, note="已整改")
        assert resp.status_code == 200, resp.text
        v = resp.json()["version"]
    assert (await rate(client, r, cid, 1, "unsatisfied"))["status"] == "reopened"
    clock.set(clock.now() + timedelta(days=35))  # the second round ends in another month
    s = await relogin(client)
    r = await citizen(client, "stats.once")
    v = (await case(client, s.zhang, cid))["version"]
    resp = await act(client, s.zhang, cid, "resolve", v, note="已重新整改")
    assert resp.status_code == 200, resp.text
    v = resp.json()["version"]
    assert (await rate(client, r, cid, 5, "satisfied"))["status"] == "resolved"
    v = (await case(client, s.zhang, cid))["version"]
    signers = ((s.zhang, "handler"), (s.wang, "supervising_leader"), (s.chen, "principal_leader"))
    for who, slot in signers:
        resp = await act(client, who, cid, "sign", v, slot=slot)
        assert resp.status_code == 200, resp.text
        v = resp.json()["version"]
    assert resp.json()["status"] == "closed"

    body = (await client.get("/api/v1/staff/stats/overview", headers=s.zhang)).json()
    t = body["totals"]
    assert (t["received"], t["accepted"], t["closed"], t["reopened"]) == (1, 1, 1, 1)
    assert (t["rated"], t["satisfied"], t["unsatisfied"], t["unsolved"]) == (1, 1, 0, 0)
    assert t["reopen_rate"] == 1.0 and t["solved_rate"] == 1.0
    assert t["closure_rate"] == 1.0 and t["satisfaction_rate"] == 1.0
    assert [b["key"] for b in body["by_month"]] == ["2026-11"]  # the month it was received


@pytest.mark.parametrize(
    ("query", "status"),
    [("?from=2026-12-01&to=2026-11-01", 400), ("?from=notadate", 422), ("?region_code=123", 422)],
)
async def test_bad_stats_queries(
    client: AsyncClient, connection: AsyncConnection, query: str, status: int
) -> None:
    s = await staff(client, connection)
    resp = await client.get(f"/api/v1/staff/stats/overview{query}", headers=s.zhang)
    assert resp.status_code == status, resp.text


async def test_a_village_counts_as_its_township(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    """Rollups are kept per township: asking for a village answers for its
    township, rather than silently returning zeros."""
    s = await staff(client, connection)
    await file_case(client, await citizen(client, "st.village"))
    url = "/api/v1/staff/stats/overview?region_code="
    village = (await client.get(url + "511702005001", headers=s.county)).json()
    town = (await client.get(url + "511702005000", headers=s.county)).json()
    assert village["totals"]["received"] == town["totals"]["received"] == 1


async def test_stats_are_for_supervision_bodies(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    from app.models.enums import StaffRole
    from tests.factories import make_staff

    await make_staff(
        connection,
        "st.handler",
        StaffRole.handler,
        department_code="D001",
        region_code="511702000000",
    )
    h = await login(client, "st.handler")
    assert (await client.get("/api/v1/staff/stats/overview", headers=h)).status_code == 403
    assert (await client.get("/api/v1/staff/stats/overview")).status_code == 401
    assert (await client.get("/api/v1/stats/public?region_code=511799999999")).status_code == 404
