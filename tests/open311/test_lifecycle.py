"""An Open311 filing is an ordinary case from then on: staff work it, GeoReport
shows its progress (status and the latest public reply, never the internal
note), its chain replays clean under ``ydt audit verify``, and the statistics
count it."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import StatsDaily
from app.stats import projector
from tests.audit.helpers import about, audit, steps, team
from tests.conftest import DEFAULT_NOW
from tests.open311.helpers import BASE, admin, filed, issue_key

pytestmark = pytest.mark.usefixtures("seeded")


async def _received(session: AsyncSession) -> int:
    """Cases counted, once the statistics projector has caught up."""
    await projector.drain(session, now=DEFAULT_NOW)
    total = (await session.execute(select(func.sum(StatsDaily.received)))).scalar_one()
    return int(total or 0)


async def test_worked_to_resolution_and_replays_clean(
    client: AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    t = await team(client, connection)
    key = await issue_key(client, await admin(client, connection))
    before = await _received(session)
    sid = (await filed(client, key["api_key"]))["service_request_id"]
    assert await _received(session) == before + 1
    await steps(
        client,
        sid,
        (t.zhang, "accept", {"note": "内部备注：先电话核实", "public_reply": "已受理"}),
        (
            t.zhang,
            "resolve",
            {"note": "内部：施工队已到场", "public_reply": "路灯已修复，感谢反映"},
        ),
    )
    for fmt in ("json", "xml"):
        resp = await client.get(f"{BASE}/requests/{sid}.{fmt}")
        assert resp.status_code == 200
        assert "路灯已修复，感谢反映" in resp.text
        assert "内部" not in resp.text
    [row] = (await client.get(f"{BASE}/requests/{sid}.json")).json()
    assert row["status"] == "closed"
    closed = (await client.get(f"{BASE}/requests.json", params={"status": "closed"})).json()
    assert sid in {r["service_request_id"] for r in closed}
    report = await audit(session)
    assert about(report, sid) == [], [f.render() for f in report.findings]
