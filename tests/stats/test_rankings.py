from __future__ import annotations

from datetime import UTC, datetime

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.stats.scenario import Staff, rate, realistic_month, relogin, resolved_case, staff
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def unsatisfied_case(client: AsyncClient, s: Staff, r: dict[str, str]) -> str:
    cid = await resolved_case(client, s, r)
    await rate(client, r, cid, 1, "unsatisfied")
    return cid


async def test_black_list_and_low_satisfaction_two_months_running(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    await staff(client, connection)
    bad: list[str] = []
    for month in (10, 11):
        clock.set(datetime(2026, month, 14, 2, 0, tzinfo=UTC))
        s = await relogin(client)
        r = await citizen(client, f"rk.{month}")
        bad += [await unsatisfied_case(client, s, r) for _ in range(3)]
    clock.set(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    county = await login(client, "st.county")
    body = (
        await client.get(
            "/api/v1/staff/stats/rankings?from=2026-10-01&to=2026-12-03&min_cases=1", headers=county
        )
    ).json()
    black = {u["unit_name"]: u for u in body["black_list"]}
    assert "凤北街道纪工委" in black and any(
        "满意率" in reason for reason in black["凤北街道纪工委"]["reasons"]
    )
    assert "凤北街道纪工委" not in {u["unit_name"] for u in body["red_list"]}
    low = [a for a in body["alerts"] if a["kind"] == "low_satisfaction"]
    assert low and set(bad) <= set(low[0]["complaint_ids"])


async def test_a_realistic_month_lists_good_units_red_and_says_why_of_every_unit(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    names = await realistic_month(client, connection)
    await make_staff(connection, "rk.county", StaffRole.supervisor, unit_code="JW-511702")
    county = await login(client, "rk.county")
    resp = await client.get(
        "/api/v1/staff/stats/rankings?from=2026-11-01&to=2026-11-30", headers=county
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    units = {u["unit_name"]: u for u in body["units"]}
    assert set(names.values()) <= set(units)

    # Good figures put a unit on the red list, best first, even with one case
    # reopened once and then closed satisfied (10% reopened is not a warning).
    assert [u["unit_name"] for u in body["red_list"]] == [names["good"], names["busy"]]
    good = units[names["good"]]
    assert good["listed"] == "red" and good["rank"] == 1 and good["warnings"] == []
    f = good["figures"]
    assert (f["received"], f["closed"], f["reopened"]) == (10, 10, 1)
    assert (f["closure_rate"], f["on_time_rate"], f["satisfaction_rate"]) == (1.0, 1.0, 1.0)
    assert f["reopen_rate"] == 0.1 and f["solved_rate"] == 1.0
    assert any("上红榜" in r for r in good["reasons"])

    poor = units[names["poor"]]
    assert [u["unit_name"] for u in body["black_list"]] == [names["poor"]]
    assert poor["listed"] == "black" and any("满意率 0%" in w for w in poor["warnings"])
    assert any("上黑榜" in r for r in poor["reasons"])
    assert any("不上红榜" in r for r in poor["reasons"])

    # Units on neither list say why not.
    quiet = units[names["quiet"]]
    assert quiet["listed"] == "none" and quiet["rank"] is None and quiet["score"] is None
    assert quiet["reasons"] == ["期内受理 2 件，少于 5 件，不参与排名，不上红榜或黑榜"]
    new = units[names["new"]]
    assert new["listed"] == "none" and new["rank"] is not None
    assert "期内受理的案件尚无办结，不上红榜" in new["reasons"]
    assert [u["unit_name"] for u in body["units"]][-1] == names["quiet"]  # unranked last
    assert body["rules"] and all(u["reasons"] for u in body["units"])


def test_red_places_go_to_the_best_units_without_a_warning() -> None:
    """Not to whichever of the top five happen to be clean: five strong units
    each with one warning used to leave the red list empty."""
    from app.stats.ranking import draw_lists
    from app.stats.schemas import Figures, RankedUnit

    def unit(uid: int, score: float, warned: bool) -> RankedUnit:
        return RankedUnit(
            unit_id=uid,
            unit_name=f"u{uid}",
            score=score,
            figures=Figures(received=9, closed=9),
            warnings=["重办率 20% 高于 10%"] if warned else [],
        )

    units = [unit(i, 0.99 - i / 100, warned=i < 5) for i in range(8)]
    red, black, ordered = draw_lists(units, min_cases=5, list_size=5)
    assert [u.unit_id for u in red] == [5, 6, 7]
    assert [u.unit_id for u in black] == [4, 3, 2, 1, 0]  # worst first
    assert [u.rank for u in ordered] == list(range(1, 9))
    assert all(u.reasons for u in ordered)


async def test_class_case_cluster_alert(client: AsyncClient, connection: AsyncConnection) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "rk.cluster")
    ids = [(await file_case(client, r, item_code="0105"))["id"] for _ in range(5)]
    body = (await client.get("/api/v1/staff/stats/rankings?min_cases=1", headers=s.county)).json()
    clusters = [a for a in body["alerts"] if a["kind"] == "cluster" and a["item_code"] == "0105"]
    assert clusters and set(ids) <= set(clusters[0]["complaint_ids"])
    assert clusters[0]["township_code"] == "511702005000"


async def test_rankings_need_a_supervision_role(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    assert (await client.get("/api/v1/staff/stats/rankings")).status_code == 401
    await make_staff(
        connection, "rk.handler", StaffRole.handler, department_code="D001",
        region_code="511702000000",
    )  # fmt: skip
    handler = await login(client, "rk.handler")
    assert (await client.get("/api/v1/staff/stats/rankings", headers=handler)).status_code == 403


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?from=2026-12-01&to=2026-11-01", 400),
        ("?from=notadate", 422),
        ("?min_cases=0", 422),
    ],
)
async def test_bad_rankings_queries(
    client: AsyncClient, connection: AsyncConnection, query: str, status: int
) -> None:
    s = await staff(client, connection)
    resp = await client.get(f"/api/v1/staff/stats/rankings{query}", headers=s.county)
    assert resp.status_code == status, resp.text
