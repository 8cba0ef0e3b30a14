"""Callbacks (回访) are recorded by the commission that drew them, never by the
unit whose work they check: that unit cannot even see the sample."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models import Callback
from app.models.enums import StaffRole
from tests.factories import login, make_staff, unit_id
from tests.stats.scenario import Staff, close, staff
from tests.workflow.helpers import case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

RECORD = {"method": "phone", "reached": True, "resolved": True, "satisfaction": "satisfied"}


async def drawn(client: AsyncClient, connection: AsyncConnection) -> tuple[Staff, dict[str, Any]]:
    """A closed case of the township unit, drawn by the county commission."""
    s = await staff(client, connection)
    cid = (await file_case(client, await citizen(client, "cb.resident")))["id"]
    await close(client, s, cid)
    d = await client.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=s.county)
    assert d.status_code == 201, d.text
    listed = await client.get(
        f"/api/v1/staff/callbacks?draw_id={d.json()['draw_id']}", headers=s.county
    )
    return s, next(cb for cb in listed.json()["items"] if cb["complaint_id"] == cid)


async def test_the_audited_unit_cannot_see_or_record_its_own_callback(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s, cb = await drawn(client, connection)
    url = f"/api/v1/staff/callbacks/{cb['id']}"
    missing = await client.post("/api/v1/staff/callbacks/2147483647", headers=s.zhang, json=RECORD)
    for member in (s.zhang, s.wang):  # the unit's cadre and its leader
        own = await client.post(url, headers=member, json=RECORD)
        assert (own.status_code, own.json()) == (404, missing.json())
        listed = await client.get(
            f"/api/v1/staff/callbacks?draw_id={cb['draw_id']}", headers=member
        )
        assert listed.status_code == 404
    after = await client.get(f"/api/v1/staff/callbacks?draw_id={cb['draw_id']}", headers=s.county)
    mine = next(x for x in after.json()["items"] if x["id"] == cb["id"])
    assert mine["status"] == "pending" and mine["done_at"] is None
    events = [e["kind"] for e in (await case(client, s.zhang, cb["complaint_id"]))["events"]]
    assert "callback" not in events


async def test_the_drawing_commission_records_it(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s, cb = await drawn(client, connection)
    done = await client.post(f"/api/v1/staff/callbacks/{cb['id']}", headers=s.county, json=RECORD)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.json()["satisfaction"] == "satisfied"


async def test_the_commission_above_and_an_admin_do_not_record_it(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    _, cb = await drawn(client, connection)
    await make_staff(connection, "cb.city", StaffRole.supervisor, unit_code="JW-5117")
    await make_staff(connection, "cb.admin", StaffRole.admin)
    city, admin = await login(client, "cb.city"), await login(client, "cb.admin")
    url = f"/api/v1/staff/callbacks/{cb['id']}"
    assert (await client.post(url, headers=city, json=RECORD)).status_code == 404
    # An administrator may read every sample, but a callback is a cadre's work.
    listed = await client.get(f"/api/v1/staff/callbacks?draw_id={cb['draw_id']}", headers=admin)
    assert listed.status_code == 200 and cb["id"] in [x["id"] for x in listed.json()["items"]]
    assert (await client.post(url, headers=admin, json=RECORD)).status_code == 403


async def test_a_commission_does_not_record_the_callback_of_its_own_case(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s, cb = await drawn(client, connection)
    # As when the commission itself handled the case (an accusation it took).
    commission = await unit_id(connection, "JW-511702")
    await connection.execute(
        update(Callback).where(Callback.id == cb["id"]).values(unit_id=commission)
    )
    own = await client.post(f"/api/v1/staff/callbacks/{cb['id']}", headers=s.county, json=RECORD)
    assert own.status_code == 403 and "本单位" in own.json()["detail"]
