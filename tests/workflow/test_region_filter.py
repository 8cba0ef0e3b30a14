"""Region filters use the code's structure, never "strip the zeros": town
511781100000 stripped to 5117811 would also match 青花镇 (511781101000)."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from app.regions.repository import prefix_of
from tests.factories import login, make_staff
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
QINGHUA = "511781101000"  # 青花镇
NEIGHBOUR = "511781100000"  # a town of 万源市 whose code ends in zeros


@pytest.mark.parametrize(
    ("code", "prefix"),
    [
        ("511700000000", "5117"),
        ("511781000000", "511781"),
        ("511781100000", "511781100"),
        ("511781101000", "511781101"),
        ("511702005010", "511702005010"),
        ("511702005001", "511702005001"),
    ],
)
def test_prefix_of_reads_the_code_structure(code: str, prefix: str) -> None:
    assert prefix_of(code) == prefix


async def test_queue_and_stats_filter_a_town_without_catching_its_neighbours(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "rf.admin", StaffRole.admin)
    admin = await login(client, "rf.admin")
    r = await citizen(client, "rf.resident")
    case = await file_case(client, r, region_code="511781101002")  # 立信社区, 青花镇

    def ids(resp: object) -> list[str]:
        return [i["id"] for i in resp.json()["items"]]  # type: ignore[attr-defined]

    own = await client.get(
        f"/api/v1/staff/complaints?region_code={QINGHUA}&limit=200", headers=admin
    )
    other = await client.get(
        f"/api/v1/staff/complaints?region_code={NEIGHBOUR}&limit=200", headers=admin
    )
    assert case["id"] in ids(own) and case["id"] not in ids(other)

    stats_own = await client.get(
        f"/api/v1/staff/stats/overview?region_code={QINGHUA}", headers=admin
    )
    stats_other = await client.get(
        f"/api/v1/staff/stats/overview?region_code={NEIGHBOUR}", headers=admin
    )
    assert stats_own.json()["totals"]["received"] >= 1
    assert stats_other.json()["totals"]["received"] == 0


async def test_stats_region_is_intersected_with_the_callers_scope(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "rf.town", StaffRole.supervisor, unit_code="XZ-511702005")
    town = await login(client, "rf.town")
    r = await citizen(client, "rf.resident2")
    await file_case(client, r)  # 双鱼湖社区, 凤北街道
    wider = await client.get("/api/v1/staff/stats/overview?region_code=511702000000", headers=town)
    assert (
        wider.status_code == 200 and wider.json()["totals"]["received"] >= 1
    )  # its own unit's share
    disjoint = await client.get(f"/api/v1/staff/stats/overview?region_code={QINGHUA}", headers=town)
    assert disjoint.status_code == 403
