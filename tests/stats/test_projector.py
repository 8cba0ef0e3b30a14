"""The statistics projector: rollups follow the event log after the request,
exactly once, whoever runs it and however often."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.clock import FixedClock
from app.models import Complaint, StatsPending, StatsTownDay
from app.stats import projector, rollup
from tests.conftest import DEFAULT_NOW
from tests.stats.test_rebuild import open_due, snapshot
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


def session_on(connection: AsyncConnection) -> AsyncSession:
    return AsyncSession(bind=connection, join_transaction_mode="create_savepoint")


async def received(connection: AsyncConnection) -> int:
    async with session_on(connection) as s:
        return int(
            (
                await s.execute(select(func.coalesce(func.sum(StatsTownDay.received), 0)))
            ).scalar_one()
        )


async def pending(connection: AsyncConnection) -> int:
    async with session_on(connection) as s:
        return int((await s.execute(select(func.count()).select_from(StatsPending))).scalar_one())


async def test_filing_queues_events_and_the_projector_applies_them_once(
    app: FastAPI, connection: AsyncConnection
) -> None:
    # A client without the suite's drain-before-stats hook: the raw behaviour.
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as raw:
        async with session_on(connection) as s:
            await projector.drain(s, now=DEFAULT_NOW)
            await s.commit()
        before = await received(connection)
        r = await citizen(raw, "proj.a")
        for _ in range(3):
            await file_case(raw, r)
    assert await pending(connection) == 6  # filed + routed per case, queued by trigger
    assert await received(connection) == before  # nothing counted on the request

    async with session_on(connection) as s:
        # A batch that fails is rolled back with its claim: still queued, counted 0 times.
        async with s.begin_nested() as failed:
            assert await projector.project(s, batch=4, now=DEFAULT_NOW) == 4
            await failed.rollback()
        assert await pending(connection) == 6
        assert await projector.drain(s, now=DEFAULT_NOW, batch=4) == 6
        assert await projector.drain(s, now=DEFAULT_NOW) == 0  # a replay applies nothing
        lag = await projector.lag(s)
        await s.commit()
    assert lag.pending == 0 and lag.high_water > 0
    assert await received(connection) == before + 3

    live, live_open = await snapshot(connection), await open_due(connection)
    async with session_on(connection) as s:
        await rollup.rebuild(s)
        await s.commit()
    assert await snapshot(connection) == live
    assert await open_due(connection) == live_open


async def test_only_one_projector_works_at_a_time_on_postgresql(
    engine: AsyncEngine, connection: AsyncConnection, client: AsyncClient
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers itself")
    await file_case(client, await citizen(client, "proj.b"))
    async with session_on(connection) as s:
        assert await projector.project(s, batch=1, now=DEFAULT_NOW) == 1  # holds the turn
        async with engine.connect() as other_conn:
            other = AsyncSession(bind=other_conn)
            assert await projector.project(other, batch=100, now=DEFAULT_NOW) == 0
            await other.rollback()
            await other.close()
        await s.commit()


async def test_readyz_warns_when_statistics_trail_and_stats_say_as_of(
    client: AsyncClient, clock: FixedClock, connection: AsyncConnection
) -> None:
    async with session_on(connection) as s:
        await projector.drain(s, now=DEFAULT_NOW)
        await s.commit()
    await file_case(client, await citizen(client, "proj.c"))
    ready = (await client.get("/readyz")).json()
    assert ready["projector"]["pending"] == 2
    assert not any("projector" in w for w in ready.get("warnings", []))
    clock.advance(timedelta(minutes=5))
    ready = (await client.get("/readyz")).json()
    assert any("projector" in w for w in ready["warnings"])
    assert ready["status"] == "ok"  # a warning: requests are still served
    public = (await client.get("/api/v1/stats/public?region_code=511702005001")).json()
    assert public["as_of"] is not None  # drained by the suite's hook: up to now


async def test_the_running_projector_waits_after_a_partial_batch(
    app: FastAPI, connection: AsyncConnection
) -> None:
    """A full batch is followed at once by the next; a partial one (the queue
    emptied) by the interval, not by another look at the queue, so a steady
    trickle of filings is applied in batches rather than one or two per
    transaction (each transaction costs a dozen statements)."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as raw:
        async with session_on(connection) as s:
            await projector.drain(s, now=DEFAULT_NOW)
            await s.commit()
        r = await citizen(raw, "proj.pace")
        for _ in range(3):
            await file_case(raw, r)
    assert await pending(connection) == 6
    opened = 0

    def sessions() -> AsyncSession:
        nonlocal opened
        opened += 1
        return session_on(connection)

    # The test leaves the connection alone while the projector runs on it.
    task = asyncio.create_task(
        projector.run(
            sessions,  # type: ignore[arg-type]
            app.state.clock,
            interval=60.0,
            batch=4,
        )
    )
    await asyncio.sleep(1.0)
    task.cancel()  # asleep in its 60 s interval by now
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await pending(connection) == 0
    # 4 (a full batch: straight on), then 2 (partial: then the interval).
    assert opened == 2


async def _drain(connection: AsyncConnection) -> None:
    async with session_on(connection) as s:
        await projector.drain(s, now=DEFAULT_NOW)
        await s.commit()


async def _marks(connection: AsyncConnection, cid: str) -> tuple[object, ...]:
    """The case's open marks, due day and unit, and on PostgreSQL the version
    of its row (xmin: any rewrite of the row changes it)."""
    async with session_on(connection) as s:
        c = await s.get(Complaint, cid)
        assert c is not None
        version = None
        if connection.dialect.name == "postgresql":
            row = text("SELECT xmin::text FROM complaints WHERE id = :id")
            version = (await s.execute(row, {"id": cid})).scalar_one()
        return c.open_unit_id, c.open_due_day, c.unit_id, rollup.local_date(c.due_at), version


async def test_a_new_case_is_counted_where_its_filing_marked_it_without_a_rewrite(
    app: FastAPI, connection: AsyncConnection
) -> None:
    """The filing writes where the case will be counted open; the projector
    counts it there once and leaves the row alone (a rewrite of a new case
    was a second entry in each of the table's indexes, bench/README.md)."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as raw:
        r = await citizen(raw, "proj.marks")
        cid = (await file_case(raw, r))["id"]
    unit, day, unit_id, due_day, version = await _marks(connection, cid)
    assert (unit, day) == (unit_id, due_day)
    await _drain(connection)
    assert await _marks(connection, cid) == (unit, day, unit_id, due_day, version)
    before = await open_due(connection)  # equals the direct count
    assert before.get((day, unit, "0101", "511702005000")) == 1
    async with session_on(connection) as s:
        await rollup.rebuild(s)
        await s.commit()
    assert await open_due(connection) == before


async def test_open_cases_recounted_while_a_filing_waits_count_it_once(
    app: FastAPI, connection: AsyncConnection
) -> None:
    """A recount of open cases leaves out a case whose filing the projector
    has not applied: the projector counts it when it does, once."""
    await _drain(connection)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as raw:
        r = await citizen(raw, "proj.recount")
        cid = (await file_case(raw, r))["id"]
    assert await pending(connection) == 2
    async with session_on(connection) as s:
        await rollup.rebuild_open_due(s)
        await s.commit()
    assert await pending(connection) == 2  # still waiting for the projector
    unit, day, *_ = await _marks(connection, cid)
    assert (unit, day) == (None, None)  # not counted yet
    await _drain(connection)
    unit, day, unit_id, due_day, _ = await _marks(connection, cid)
    assert (unit, day) == (unit_id, due_day)
    counted = await open_due(connection)  # as the direct count says: once
    assert counted.get((day, unit, "0101", "511702005000")) == 1
