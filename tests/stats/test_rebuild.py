"""After a random sequence of actions, rebuilding from the event log gives
exactly the rollups the live path maintained."""

from __future__ import annotations

import random
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import Complaint, StatsDaily, StatsOpenDue, StatsRecentCluster
from app.models.stats import METRICS
from app.stats import projector, rollup
from tests.conftest import DEFAULT_NOW
from tests.stats.scenario import staff
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

MOVES = {
    "submitted": [
        ("accept", {}),
        ("reject", {"note": "不予受理"}),
        ("escalate", {"note": "上报"}),
        # Same unit, another item; and a county-scope item (another unit).
        ("reclassify", {"item_code": "0105"}),
        ("reclassify", {"item_code": "0106"}),
    ],
    "accepted": [
        ("resolve", {"note": "已办结"}),
        ("reply", {"note": "进展"}),
        ("extend", {"days": 3, "note": "延期"}),
    ],
    "resolved": [("sign", {"slot": "handler"}), ("reopen", {"note": "重办"}), ("rate", {})],
    "reopened": [("resolve", {"note": "再次办结"})],
    "escalated": [("accept", {})],
}


async def open_due(connection: AsyncConnection) -> dict[tuple[object, ...], int]:
    """stats_open_due without its zero rows, and the direct count it must equal
    (once the projector has drained)."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await projector.drain(s, now=DEFAULT_NOW)
        rows = (await s.execute(select(StatsOpenDue))).scalars().all()
        counted = {
            (r.due_day, r.unit_id, r.item_code, r.township_code): r.open for r in rows if r.open
        }
        direct: dict[tuple[object, ...], int] = {}
        for c in (await s.execute(select(Complaint))).scalars():
            if c.status.is_open:
                key = (rollup.local_date(c.due_at), c.unit_id, c.item_code, c.township_code)
                direct[key] = direct.get(key, 0) + 1
                assert (c.open_unit_id, c.open_due_day) == (key[1], key[0])
            else:
                assert c.open_due_day is None
        assert counted == direct
        return counted


async def recent_rows(connection: AsyncConnection) -> dict[tuple[int, str, str], int]:
    """The class-case alert's running window (app/stats/recent.py), without zeros."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await projector.drain(s, now=DEFAULT_NOW)
        rows = (await s.execute(select(StatsRecentCluster))).scalars().all()
    return {(r.unit_id, r.item_code, r.township_code): r.received for r in rows if r.received}


async def snapshot(
    connection: AsyncConnection, model: Any = StatsDaily
) -> dict[tuple[object, ...], tuple[int, ...]]:
    """A rollup table's rows by primary key, without rows of zeros: a case that
    moves (escalation) can leave one behind; it counts nothing, and the rebuild
    does not write it."""
    key = [c.name for c in model.__table__.primary_key.columns]
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await projector.drain(s, now=DEFAULT_NOW)
        rows = (await s.execute(select(model))).scalars().all()
        return {
            tuple(getattr(r, k) for k in key): values
            for r in rows
            if any(values := tuple(getattr(r, m) for m in METRICS))
        }


@pytest.mark.parametrize("seed", [7, 2026])
async def test_rebuild_equals_incremental(
    client: AsyncClient, connection: AsyncConnection, seed: int
) -> None:
    rnd = random.Random(seed)
    s = await staff(client, connection)
    r = await citizen(client, f"rb.{seed}")
    ids = [
        (await file_case(client, r, item_code=rnd.choice(["0101", "0103", "0105"])))["id"]
        for _ in range(6)
    ]
    for _ in range(40):
        cid = rnd.choice(ids)
        cf = await case(client, s.county, cid)  # the commission sees every case below it
        if cf["status"] not in MOVES:
            continue
        actor = s.county if cf["unit"]["code"] == "JW-511702" else s.zhang
        if cf["unit"]["code"] not in ("JW-511702", "XZ-511702005"):
            continue  # reclassified to a resident group: nobody here works it
        action, body = rnd.choice(MOVES[cf["status"]])
        if action == "rate":
            verdict = rnd.choice(["satisfied", "basic", "unsatisfied"])
            resp = await client.post(
                f"/api/v1/complaints/{cid}/rating",
                headers=r,
                json={"score": rnd.randint(1, 5), "satisfaction": verdict},
            )
        else:
            resp = await act(client, actor, cid, action, cf["version"], **body)
        assert resp.status_code in (200, 201, 400, 403, 404, 409), resp.text
    live = {m: await snapshot(connection, m) for m in rollup.ROLLUP_TABLES}
    assert all(live.values()), "the sequence produced no statistics"
    live_open = await open_due(connection)
    live_recent = await recent_rows(connection)
    assert live_recent, "the class-case window counted nothing"
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as sess:
        await rollup.rebuild(sess)
        await sess.commit()
    for model, rows in live.items():
        assert await snapshot(connection, model) == rows, f"rebuild differs in {model.__name__}"
    assert await open_due(connection) == live_open
    assert await recent_rows(connection) == live_recent
