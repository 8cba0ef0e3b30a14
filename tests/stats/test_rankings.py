from __future__ import annotations

from datetime import UTC, datetime

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.stats.scenario import Staff, rate, relogin, resolved_case, staff
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
