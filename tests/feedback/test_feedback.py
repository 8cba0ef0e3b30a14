from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.stats.scenario import close, rate, resolved_case, staff
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def test_rating_signs_for_the_complainant_and_can_close_the_case(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "fb.r1")
    cid = await resolved_case(client, s, r)
    v = 3
    for who, slot in (
        (s.zhang, "handler"),
        (s.wang, "supervising_leader"),
        (s.chen, "principal_leader"),
    ):
        v = (await act(client, who, cid, "sign", v, slot=slot)).json()["version"]
    assert (await case(client, s.zhang, cid))["status"] == "resolved"
    out = await rate(client, r, cid, 4, "satisfied")
    assert out["status"] == "closed" and not out["reopened"]
    again = await client.post(
        f"/api/v1/complaints/{cid}/rating",
        headers=r,
        json={"score": 5, "satisfaction": "satisfied"},
    )
    assert again.status_code == 409


async def test_unsatisfied_reopens_only_once(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "fb.r2")
    cid = await resolved_case(client, s, r)
    first = await rate(client, r, cid, 1, "unsatisfied")
    assert first["reopened"] and first["status"] == "reopened"
    cf = await case(client, s.zhang, cid)
    assert "dissatisfied" in cf["priority_flags"]
    await act(client, s.zhang, cid, "resolve", cf["version"], note="重新整改完毕")
    second = await rate(client, r, cid, 1, "unsatisfied")
    assert not second["reopened"] and second["status"] == "resolved" and second["round"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"score": 0, "satisfaction": "satisfied"},
        {"score": 6, "satisfaction": "basic"},
        {"score": 3, "satisfaction": "happy"},
        {"score": 3},
        {"score": 3, "satisfaction": "basic", "comment": "x" * 501},
    ],
)
async def test_bad_ratings_are_422(
    client: AsyncClient, connection: AsyncConnection, payload: dict[str, object]
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "fb.r3")
    cid = await resolved_case(client, s, r)
    assert (
        await client.post(f"/api/v1/complaints/{cid}/rating", headers=r, json=payload)
    ).status_code == 422


async def test_rating_before_resolution_or_by_someone_else(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await staff(client, connection)
    r, other = await citizen(client, "fb.r4"), await citizen(client, "fb.r5")
    cid = (await file_case(client, r))["id"]
    early = await client.post(
        f"/api/v1/complaints/{cid}/rating",
        headers=r,
        json={"score": 5, "satisfaction": "satisfied"},
    )
    assert early.status_code == 409
    nosy = await client.post(
        f"/api/v1/complaints/{cid}/rating",
        headers=other,
        json={"score": 1, "satisfaction": "unsatisfied"},
    )
    assert nosy.status_code == 404


async def test_quarterly_callbacks_draw_record_and_catch_a_fake_closure(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "fb.r6")
    ids = []
    for _ in range(6):
        cid = (await file_case(client, r))["id"]
        await close(client, s, cid)
        ids.append(cid)
    # the draw is by the commission above, over closed cases of the quarter
    town = await client.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=s.zhang)
    assert town.status_code == 403
    d = await client.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=s.county)
    assert d.status_code == 201, d.text
    body = d.json()
    assert body["population"] >= 6 and body["drawn"] >= 2  # ceil(20% of 6) = 2 for this unit
    assert body["drawn"] / body["population"] >= 0.2 and body["seed"]
    again = (
        await client.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=s.county)
    ).json()
    assert set(again["callback_ids"]).isdisjoint(body["callback_ids"])
    listed = (
        await client.get(f"/api/v1/staff/callbacks?draw_id={body['draw_id']}", headers=s.county)
    ).json()["items"]
    target = next(cb for cb in listed if cb["complaint_id"] in ids)
    # A sample names cases and residents' verdicts: only the drawing commission
    # sees it, not another unit, nor the unit whose cases it checks.
    await make_staff(connection, "cb.other", StaffRole.supervisor, unit_code="XZ-511702001")
    other = await login(client, "cb.other")
    for outsider in (other, s.zhang):
        foreign = await client.get(
            f"/api/v1/staff/callbacks?draw_id={body['draw_id']}", headers=outsider
        )
        assert foreign.status_code == 404
    rec = await client.post(
        f"/api/v1/staff/callbacks/{target['id']}",
        headers=s.county,
        json={
            "method": "on_site",
            "reached": True,
            "resolved": False,
            "satisfaction": "unsatisfied",
            "fake_closure": True,
            "note": "现场核实：公示栏仍为空",
        },
    )
    assert rec.status_code == 200 and rec.json()["fake_closure"]
    cf = await case(client, s.zhang, target["complaint_id"])
    assert cf["status"] == "reopened" and "fake_closure" in cf["priority_flags"]
    twice = await client.post(
        f"/api/v1/staff/callbacks/{target['id']}",
        headers=s.county,
        json={"method": "phone", "reached": False},
    )
    assert twice.status_code == 409
    stats = (await client.get("/api/v1/staff/stats/overview", headers=s.zhang)).json()["totals"]
    # (the reopened case is no longer closed, so it is not among the closed "unsolved")
    assert stats["fake_closures"] >= 1


@pytest.mark.parametrize(
    ("quarter", "status"),
    [("2026Q5", 400), ("2027Q2", 400), ("bad", 422)],
)
async def test_bad_draws(
    client: AsyncClient, connection: AsyncConnection, quarter: str, status: int
) -> None:
    s = await staff(client, connection)
    assert (
        await client.post(f"/api/v1/staff/callbacks/draw?quarter={quarter}", headers=s.county)
    ).status_code == status


@pytest.mark.parametrize(
    "payload",
    [
        {"method": "phone", "reached": False, "fake_closure": True, "note": "x"},
        {"method": "phone", "reached": True, "fake_closure": True, "note": ""},
        {"method": "letter", "reached": True},
    ],
)
async def test_inconsistent_callback_records_are_422(
    client: AsyncClient, connection: AsyncConnection, payload: dict[str, object]
) -> None:
    s = await staff(client, connection)
    assert (
        await client.post("/api/v1/staff/callbacks/1", headers=s.county, json=payload)
    ).status_code == 422
