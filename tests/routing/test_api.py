"""Administrators' routing data over HTTP, with history, and the preview."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import StaffUser
from app.models.enums import StaffRole
from tests.factories import login, make_staff, unit_id

pytestmark = pytest.mark.usefixtures("seeded")

VILLAGE = "511702005001"  # 双鱼湖社区
TOWN_UNIT = "XZ-511702005"  # 凤北街道纪工委


@pytest.fixture
async def admin(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "root", StaffRole.admin)
    return await login(client, "root")


@pytest.fixture
async def cadre(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(
        connection, "fb.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT, display_name="张欣"
    )
    return await login(client, "fb.zhang")


async def preview(
    client: AsyncClient, headers: dict[str, str], **body: object
) -> dict[str, object]:
    resp = await client.post(
        "/api/v1/staff/routing/preview",
        json={"item_code": "0101", "region_code": VILLAGE, **body},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def designate_li(
    client: AsyncClient, connection: AsyncConnection, admin: dict[str, str]
) -> StaffUser:
    """李敏, a supervisor of the street committee, designated for item 0101."""
    li = await make_staff(
        connection, "fb.li", StaffRole.supervisor, unit_code=TOWN_UNIT, display_name="李敏"
    )
    resp = await client.post(
        "/api/v1/staff/routing/designated-cadres",
        json={"unit_code": TOWN_UNIT, "item_code": "0101", "username": "fb.li"},
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    return li


async def test_preview_routes_a_village_item_to_the_street_committee(
    client: AsyncClient, cadre: dict[str, str]
) -> None:
    body = await preview(client, cadre)
    assert body["unit"]["code"] == TOWN_UNIT  # type: ignore[index]
    assert body["trace"] and body["due_at"] >= body["accept_due_at"]  # type: ignore[operator]
    assert body["cadre_id"] is not None  # the only cadre of the unit


async def test_override_changes_routing_keeps_history_and_can_be_revoked(
    client: AsyncClient, admin: dict[str, str], cadre: dict[str, str]
) -> None:
    payload = {
        "item_code": "0101",
        "region_code": "511702000000",
        "unit_code": "JW-511702",
        "reason": "区级专项整治",
    }
    first = await client.post("/api/v1/staff/routing/overrides", json=payload, headers=admin)
    assert first.status_code == 201, first.text
    assert first.json()["created_by"] == "root"
    assert (await preview(client, cadre))["unit"]["code"] == "JW-511702"  # type: ignore[index]

    second = await client.post(
        "/api/v1/staff/routing/overrides",
        json={**payload, "unit_code": "JW-5117", "reason": "市级督办"},
        headers=admin,
    )
    assert second.status_code == 201
    history = (
        await client.get(
            "/api/v1/staff/routing/overrides?item_code=0101&include_revoked=true", headers=admin
        )
    ).json()
    assert [h["revoked_by"] for h in history] == [None, "root"]
    active = (
        await client.get("/api/v1/staff/routing/overrides?item_code=0101", headers=admin)
    ).json()
    assert [a["id"] for a in active] == [second.json()["id"]]

    revoked = await client.delete(
        f"/api/v1/staff/routing/overrides/{second.json()['id']}", headers=admin
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "root"
    again = await client.delete(
        f"/api/v1/staff/routing/overrides/{second.json()['id']}", headers=admin
    )
    assert again.status_code == 409
    assert (await preview(client, cadre))["unit"]["code"] == TOWN_UNIT  # type: ignore[index]


async def test_a_route_worked_out_before_a_change_is_not_served_after_it(
    client: AsyncClient, connection: AsyncConnection, admin: dict[str, str], cadre: dict[str, str]
) -> None:
    """What routing derives per item and village is kept with the process's
    reference load (routing.service._context): a new override, a cadre made
    supervisor of the unit, and a designation each show on the next route."""
    before = await preview(client, cadre)
    assert before["unit"]["code"] == TOWN_UNIT  # type: ignore[index]
    assert (await preview(client, cadre)) == before  # the kept context, same answer
    li = await designate_li(client, connection, admin)
    assert (await preview(client, cadre))["cadre_id"] == li.id
    moved = await client.post(
        "/api/v1/staff/routing/overrides",
        json={
            "item_code": "0101",
            "region_code": VILLAGE,
            "unit_code": "JW-511702",
            "reason": "区级专项整治",
        },
        headers=admin,
    )
    assert moved.status_code == 201, moved.text
    after = await preview(client, cadre)
    assert after["unit"]["code"] == "JW-511702"  # type: ignore[index]
    trace = after["trace"]
    assert isinstance(trace, list) and any("区级专项整治" in t for t in trace)


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        (
            {"item_code": "9999", "region_code": VILLAGE, "unit_code": "JW-511702", "reason": "xx"},
            404,
            "item_not_found",
        ),
        (
            {
                "item_code": "0101",
                "region_code": "511799999999",
                "unit_code": "JW-511702",
                "reason": "xx",
            },
            404,
            "region_not_found",
        ),
        (
            {"item_code": "0101", "region_code": VILLAGE, "unit_code": "NOPE", "reason": "xx"},
            404,
            "not_found",
        ),
        (
            {"item_code": "0101", "region_code": VILLAGE, "unit_code": "JW-511702", "reason": ""},
            422,
            None,
        ),
        (
            {"item_code": "1", "region_code": VILLAGE, "unit_code": "JW-511702", "reason": "xx"},
            422,
            None,
        ),
    ],
)
async def test_bad_overrides_are_refused_and_nothing_is_written(
    client: AsyncClient,
    admin: dict[str, str],
    payload: dict[str, str],
    status: int,
    error: str | None,
) -> None:
    resp = await client.post("/api/v1/staff/routing/overrides", json=payload, headers=admin)
    assert resp.status_code == status
    if error:
        assert resp.json()["error"] == error
    assert (
        await client.get("/api/v1/staff/routing/overrides?include_revoked=true", headers=admin)
    ).json() == []


async def test_only_admins_manage_routing(client: AsyncClient, cadre: dict[str, str]) -> None:
    resp = await client.post(
        "/api/v1/staff/routing/overrides",
        json={
            "item_code": "0101",
            "region_code": VILLAGE,
            "unit_code": "JW-511702",
            "reason": "xx",
        },
        headers=cadre,
    )
    assert resp.status_code == 403
    assert (await client.get("/api/v1/staff/routing/overrides", headers=cadre)).status_code == 403


async def test_designated_cadre_is_preferred(
    client: AsyncClient, connection: AsyncConnection, admin: dict[str, str], cadre: dict[str, str]
) -> None:
    li = await designate_li(client, connection, admin)
    body = await preview(client, cadre)
    assert body["cadre_id"] == li.id
    trace = body["trace"]
    assert isinstance(trace, list) and any("李敏" in t and "指定" in t for t in trace)


async def test_designating_a_cadre_of_another_unit_is_refused(
    client: AsyncClient, connection: AsyncConnection, admin: dict[str, str]
) -> None:
    await make_staff(connection, "tc.chen", StaffRole.supervisor, unit_code="JW-511702")
    resp = await client.post(
        "/api/v1/staff/routing/designated-cadres",
        json={"unit_code": TOWN_UNIT, "item_code": "0101", "username": "tc.chen"},
        headers=admin,
    )
    assert resp.status_code == 400 and "不是" in resp.json()["detail"]


async def test_units_filtered_by_region(
    client: AsyncClient, cadre: dict[str, str], connection: AsyncConnection
) -> None:
    body = (
        await client.get("/api/v1/staff/units?region_code=511702005000&limit=200", headers=cadre)
    ).json()
    kinds = {u["kind"] for u in body["items"]}
    assert kinds == {"township_committee", "village_committee"}
    town_id = await unit_id(connection, TOWN_UNIT)
    assert any(u["id"] == town_id for u in body["items"])
    county = (
        await client.get("/api/v1/staff/units?region_code=511702000000&limit=200", headers=cadre)
    ).json()
    assert len(county["items"]) > len(body["items"])
    assert (await client.get("/api/v1/staff/units")).status_code == 401


async def test_calendar_import_moves_deadlines_and_silences_the_warning(
    client: AsyncClient, admin: dict[str, str], cadre: dict[str, str]
) -> None:
    late = "2026-12-28T02:00:00+00:00"
    before = await preview(client, cadre, item_code="0106", received_at=late)
    assert before["warnings"]
    schedule = {
        "holidays": [{"date": "2027-01-01", "note": "元旦"}, "2027-01-02", "2027-01-03"],
        "workdays": [],
    }
    put = await client.put("/api/v1/staff/calendar/2027", json=schedule, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["known"] and put.json()["days"][0] == {
        "day": "2027-01-01",
        "is_workday": False,
        "source": "admin",
        "note": "元旦",
    }
    after = await preview(client, cadre, item_code="0106", received_at=late)
    assert after["warnings"] == []


@pytest.mark.parametrize(
    "schedule",
    [
        {"holidays": ["2026-10-01"]},  # wrong year
        {"holidays": ["2027-02-30"]},  # no such day
        {"workdays": ["2027-01-04"]},  # a Monday is already a working day
        {"holidays": ["2027-01-01", "2027-01-01"]},  # duplicate
        {},  # nothing
    ],
)
async def test_bad_calendar_imports_are_400(
    client: AsyncClient, admin: dict[str, str], schedule: dict[str, object]
) -> None:
    resp = await client.put("/api/v1/staff/calendar/2027", json=schedule, headers=admin)
    assert resp.status_code == 400
    assert (await client.get("/api/v1/staff/calendar/2027", headers=admin)).json()["known"] is False
