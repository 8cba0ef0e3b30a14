"""The queue's order (card, priority, deadline, id) and its keyset cursor:
pages joined end to end are exactly the one long page, whatever the filter."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.stats.scenario import Staff, close, relogin, staff
from tests.workflow.helpers import VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")

RANK = {"red": 3, "orange": 2, "yellow": 1, "none": 0}
QUEUE = "/api/v1/staff/complaints"


async def world(client: AsyncClient, connection: AsyncConnection, clock: FixedClock) -> Staff:
    s = await staff(client, connection)
    flags = [[], ["elderly"], [], ["emergency"], [], ["group", "elderly"], []]
    ids = []
    for i in range(21):
        body = {
            "channel": "visit",
            "item_code": ["0101", "0103", "0105"][i % 3],
            "region_code": VILLAGE,
            "content": f"来访反映第{i}件事情，请核实处理",
            "received_at": (clock.now() - timedelta(days=i, hours=i)).isoformat(),
            "reporter_name": "王大爷",
            "reporter_phone": "13800002222",
            "priority_flags": flags[i % len(flags)],
        }
        r = await client.post(QUEUE, headers=s.zhang, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for cid in ids[:3]:
        await close(client, s, cid)
    clock.advance(timedelta(days=12))
    return await relogin(client)


def key(item: dict[str, Any]) -> tuple[int, int, datetime, str]:
    due = datetime.fromisoformat(item["due_at"])
    return (-RANK[item["card"]], -item["priority"], due, item["id"])


async def pages(client: AsyncClient, h: dict[str, str], query: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        url = f"{QUEUE}?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        r = await client.get(url, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ran out")


@pytest.mark.parametrize("query", ["", "&card=red", "&card=none", "&status=closed", "&q=来访"])
async def test_pages_joined_are_the_one_long_page(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock, query: str
) -> None:
    s = await world(client, connection, clock)
    whole = (await client.get(f"{QUEUE}?limit=200{query}", headers=s.zhang)).json()
    assert whole["next_cursor"] is None
    items = whole["items"]
    assert items, "the filter matched nothing"
    assert items == sorted(items, key=key)
    if not query:
        assert len(items) == 21
        assert len({i["card"] for i in items}) >= 3
        assert len({i["priority"] for i in items}) >= 3
    for limit in (1, 2, 5):
        assert await pages(client, s.zhang, query, limit) == [i["id"] for i in items]


async def test_a_number_is_still_an_offset_and_bad_cursors_are_400(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    s = await world(client, connection, clock)
    whole = (await client.get(f"{QUEUE}?limit=200", headers=s.zhang)).json()
    ids = [i["id"] for i in whole["items"]]
    page = (await client.get(f"{QUEUE}?limit=4&cursor=6", headers=s.zhang)).json()
    assert [i["id"] for i in page["items"]] == ids[6:10]
    bad_cursors = (
        "x.y.z.w",
        "9.0.1.abc",
        "3.0.99999999999999999999.00",
        "3.0.1",
        "3.0.1." + "g" * 32,
    )
    for bad in bad_cursors:
        r = await client.get(f"{QUEUE}?cursor={bad}", headers=s.zhang)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] == "bad_request"
    r = await client.get(f"{QUEUE}?cursor=" + "1" * 81, headers=s.zhang)
    assert r.status_code == 422


async def test_a_cursor_never_widens_scope(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    s = await world(client, connection, clock)
    first = (await client.get(f"{QUEUE}?limit=2", headers=s.zhang)).json()
    await make_staff(connection, "other.town", StaffRole.supervisor, unit_code="XZ-511702001")
    other = await login(client, "other.town")
    r = await client.get(f"{QUEUE}?limit=2&cursor={first['next_cursor']}", headers=other)
    assert r.status_code == 200
    assert r.json()["items"] == []
