"""Reclassifying a case's item: re-routed with its trace, counts moved, recorded."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import StatsDaily
from app.models.enums import StaffRole
from app.stats import projector, rollup
from app.workflow import reclassify
from tests.conftest import DEFAULT_NOW
from tests.factories import login, make_staff
from tests.stats.test_rebuild import open_due, snapshot
from tests.workflow.helpers import TOWN_UNIT, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
TEXT = "村里修路的钱花在哪了，账目一直不公开，村会计说要去镇上问。"


async def counts_by_item(connection: AsyncConnection) -> dict[str, int]:
    """Cases counted per item, once the statistics projector has caught up."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await projector.drain(s, now=DEFAULT_NOW)
        rows = (await s.execute(select(StatsDaily.item_code, StatsDaily.received))).all()
    totals: dict[str, int] = {}
    for item, n in rows:
        totals[item] = totals.get(item, 0) + n
    return {k: v for k, v in totals.items() if v}


async def test_reclassify_reroutes_moves_counts_and_records(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "rc.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "rc.county", StaffRole.supervisor, unit_code="JW-511702")
    zhang, county = await login(client, "rc.zhang"), await login(client, "rc.county")
    resident = await citizen(client, "rc.resident")
    cid = (await file_case(client, resident, item_code="0101", content=TEXT))["id"]
    before = await case(client, zhang, cid)
    assert (await counts_by_item(connection)).get("0101") == 1

    # 0105 is a township-scope item: the same township unit keeps the case.
    resp = await act(client, zhang, cid, "reclassify", before["version"], item_code="0105")
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["item"]["code"] == "0105" and after["unit"]["code"] == TOWN_UNIT
    assert after["routing_trace"] and after["routing_trace"] != before["routing_trace"]
    event = after["events"][-1]
    assert event["kind"] == "reclassified" and event["public"] is False
    assert event["data"]["from_item_code"] == "0101" and event["data"]["to_item_code"] == "0105"
    assert event["data"]["trace"] == after["routing_trace"]
    assert await counts_by_item(connection) == {"0105": 1}

    # 0106 is county-scope: routed to the resident group overseeing its department.
    resp = await act(client, zhang, cid, "reclassify", after["version"], item_code="0106")
    assert resp.status_code == 200, resp.text
    moved = resp.json()
    assert moved["unit"]["code"] != TOWN_UNIT
    assert moved["events"][-1]["data"]["from_unit_id"] == after["unit"]["id"]
    assert moved["events"][-1]["data"]["unit_id"] == moved["unit"]["id"]
    # The township cadre no longer holds it: out of scope is 404, as for any case.
    assert (await client.get(f"/api/v1/staff/complaints/{cid}", headers=zhang)).status_code == 404
    assert await counts_by_item(connection) == {"0106": 1}

    live, live_open = await snapshot(connection), await open_due(connection)
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await rollup.rebuild(s)
        await s.commit()
    assert await snapshot(connection) == live
    assert await open_due(connection) == live_open

    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        found = [c for c in await reclassify.corrections(s) if c.text == TEXT]
    pairs = [(c.from_item_code, c.to_item_code) for c in found]
    assert pairs == [("0101", "0105"), ("0105", "0106")]
    # The commission still sees the case (every unit below it).
    assert (await case(client, county, cid))["item"]["code"] == "0106"


async def test_reclassify_refusals(client: AsyncClient, connection: AsyncConnection) -> None:
    await make_staff(connection, "rf.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    zhang = await login(client, "rf.zhang")
    resident = await citizen(client, "rf.resident")
    cid = (await file_case(client, resident, item_code="0101"))["id"]
    v = (await case(client, zhang, cid))["version"]

    same = await act(client, zhang, cid, "reclassify", v, item_code="0101")
    assert same.status_code == 400 and "相同" in same.json()["detail"]
    missing = await act(client, zhang, cid, "reclassify", v)
    assert missing.status_code == 400
    # A complaint cannot become an accusation (identity is kept differently).
    crossing = await act(client, zhang, cid, "reclassify", v, item_code="0102")
    assert crossing.status_code == 400 and "举报" in crossing.json()["detail"]
    unknown = await act(client, zhang, cid, "reclassify", v, item_code="9999")
    assert unknown.status_code == 404
    bad = await act(client, zhang, cid, "reclassify", v, item_code="01;1")
    assert bad.status_code == 422
    stale = await act(client, zhang, cid, "reclassify", v + 5, item_code="0105")
    assert stale.status_code == 409
    # Only before acceptance: after it the unit has committed to a deadline.
    accepted = await act(client, zhang, cid, "accept", v)
    assert accepted.status_code == 200, accepted.text
    late = await act(client, zhang, cid, "reclassify", accepted.json()["version"], item_code="0105")
    assert late.status_code == 409
    # Nothing above changed the item.
    assert (await case(client, zhang, cid))["item"]["code"] == "0101"


async def test_other_unit_and_handler_cannot_reclassify(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "ro.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "ro.other", StaffRole.supervisor, unit_code="XZ-511702001")
    other = await login(client, "ro.other")
    zhang = await login(client, "ro.zhang")
    resident = await citizen(client, "ro.resident")
    cid = (await file_case(client, resident))["id"]
    v = (await case(client, zhang, cid))["version"]
    resp = await act(client, other, cid, "reclassify", v, item_code="0105")
    assert resp.status_code == 404


def test_fold_moves_unit_on_reclassified_and_keys_old_item() -> None:
    """Pure: the tally follows the unit a reclassification names, and the
    contribution before the event is keyed by the item it names as old."""

    class E:
        def __init__(self, kind: str, data: dict[str, object]) -> None:
            self.kind, self.data = kind, data
            self.created_at = datetime(2026, 3, 2, tzinfo=rollup.TZ)

    filed = E("filed", {"unit_id": 5, "received_at": "2026-03-02T09:00:00+08:00"})
    moved = E("reclassified", {"unit_id": 9, "from_item_code": "0101", "to_item_code": "0106"})
    t = rollup.fold([filed, moved])
    assert t.unit_id == 9 and t.received_day == date(2026, 3, 2)
    found = rollup.contribution(t)
    assert found is not None and found[0] == 9 and found[2]["received"] == 1

    # The projector keys each side of a change by the item then in force:
    # before the reclassification the old item, after it the case's own.
    first, after = projector._items("0106", [filed, moved])
    assert first == "0101" and after == ["0101", "0106"]
    again = E("reclassified", {"unit_id": 9, "from_item_code": "0106", "to_item_code": "0203"})
    assert projector._items("0203", [filed, moved, again]) == ("0101", ["0101", "0106", "0203"])
