""" "Open and overdue now" from stats_open_due: it follows filing, extension,
escalation, closure and reopening, and folding past days changes no answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.models import Complaint, StatsOpenDue
from app.stats import rollup
from tests.stats.scenario import Staff, close, relogin, staff
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def overdue(client: AsyncClient, s: Staff) -> tuple[int, dict[str, int]]:
    body = (await client.get("/api/v1/staff/stats/overview", headers=s.county)).json()
    by_unit = {b["key"]: b["figures"]["open_overdue"] for b in body["by_unit"]}
    return body["totals"]["open_overdue"], by_unit


async def direct(connection: AsyncConnection, now: object, ids: list[str]) -> int:
    """The same figure counted straight from this test's cases (other tests,
    such as the live concurrency ones, may have committed cases of their own)."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        stmt = select(func.count()).where(
            Complaint.id.in_(ids),
            Complaint.status.not_in(["closed", "rejected"]),
            Complaint.due_at < now,
        )
        return int((await s.execute(stmt)).scalar_one())


async def fold(connection: AsyncConnection, clock: FixedClock) -> int:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        n = await rollup.compact_open_due(s, rollup.local_date(clock.now()))
        await s.commit()
        return n


async def rows(connection: AsyncConnection) -> list[StatsOpenDue]:
    """This test's township only: live tests elsewhere may have committed cases."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        stmt = select(StatsOpenDue).where(StatsOpenDue.township_code == "511702005000")
        return list((await s.execute(stmt)).scalars().all())


async def test_overdue_follows_the_cases_and_survives_folding(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "od.one")
    a, b, c = [(await file_case(client, r))["id"] for _ in range(3)]
    assert (await overdue(client, s))[0] == 0

    # An extension moves a case's due day; it is still counted once.
    v = (await case(client, s.zhang, a))["version"]
    v = (await act(client, s.zhang, a, "accept", v)).json()["version"]
    ext = await act(client, s.zhang, a, "extend", v, days=5, note="需现场核查")
    assert ext.status_code == 200, ext.text

    clock.advance(timedelta(days=400))
    s = await relogin(client)
    total, _ = await overdue(client, s)
    assert total == 3 == await direct(connection, clock.now(), [a, b, c])

    # Folding rewrites the past days into one row per key and changes no figure.
    assert await fold(connection, clock) >= 2  # a (extended) apart; b and c share a day
    assert {row.due_day for row in await rows(connection)} == {rollup.SETTLED_DAY}
    assert (await overdue(client, s))[0] == 3

    # A closure after the fold leaves a -1 row on its old day; the sum is right
    # and the next fold absorbs it.
    await close(client, s, b)
    assert (await overdue(client, s))[0] == 2 == await direct(connection, clock.now(), [a, b, c])
    assert any(row.open < 0 for row in await rows(connection))
    assert await fold(connection, clock) >= 1
    assert all(row.open > 0 for row in await rows(connection))
    assert (await overdue(client, s))[0] == 2

    # Escalation moves the open case to the unit above.
    v = (await case(client, s.zhang, c))["version"]
    esc = await act(client, s.zhang, c, "escalate", v, note="涉及乡镇干部，请县纪委处理")
    assert esc.status_code == 200, esc.text
    total, by_unit = await overdue(client, s)
    assert total == 2
    assert by_unit[str(esc.json()["unit"]["id"])] == 1

    # The move wrote rows on the old day (-1 here, +1 there); fold them, and
    # then there is nothing left to fold.
    assert await fold(connection, clock) > 0
    assert await fold(connection, clock) == 0
    assert (await overdue(client, s))[0] == 2
