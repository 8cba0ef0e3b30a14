"""Connections a process keeps for the residents' one-statement reads
(driver.HotConnections): PostgreSQL in autocommit only, at most half the
pool, one statement at a time each, dropped after any error or cancellation,
retired at the recycle age, handed back when the app stops."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Integer, String, bindparam, cast, event, literal_column, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import driver
from app.core.db import (
    close_hot_connections,
    create_engine,
    create_read_sessionmaker,
    hot_connections,
    read_session,
)
from app.core.errors import unavailable_error
from app.main import create_app
from tests.conftest import make_settings
from tests.core.conftest import hot_of, url_of

pytestmark = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)

PID: Any = select(literal_column("pg_backend_pid()"))
SLOW_PID: Any = select(literal_column("pg_backend_pid()"), literal_column("pg_sleep(0.3)"))


def request_for(engine: AsyncEngine, **overrides: object) -> Any:
    settings = make_settings(database_url=url_of(engine), **overrides)
    maker = create_read_sessionmaker(engine, settings)
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(read_sessionmaker=maker)))


async def read(request: Any, stmt: Any = PID) -> Any:
    async with read_session(request) as session:
        return await driver.scalar(session, stmt, {})


async def test_a_read_keeps_its_connection_for_the_next(four: AsyncEngine) -> None:
    request = request_for(four)
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool
    first = await read(request)
    assert (hot.held, hot.idle, pool.checkedout()) == (1, 1, 1)
    assert await read(request) == first  # the same backend, not a checkout
    assert (hot.held, hot.idle, pool.checkedout()) == (1, 1, 1)
    await hot.close()
    assert (hot.held, pool.checkedout()) == (0, 0)


async def test_reads_past_the_cap_borrow_and_hand_back(four: AsyncEngine) -> None:
    request = request_for(four)
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool
    pids = await asyncio.gather(*(read(request, SLOW_PID) for _ in range(4)))
    assert len(set(pids)) == 4  # all four at once: two kept, two borrowed
    assert hot.held == 2 and pool.checkedout() == 2  # the borrowed two went back
    await hot.close()
    assert pool.checkedout() == 0


async def test_after_close_reads_borrow(four: AsyncEngine) -> None:
    request = request_for(four)
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool
    await read(request)
    await close_hot_connections(request.app.state.read_sessionmaker)
    assert (hot.held, pool.checkedout()) == (0, 0)
    assert await read(request) > 0
    assert (hot.held, pool.checkedout()) == (0, 0)


async def test_a_read_in_flight_at_close_goes_back_when_it_ends(four: AsyncEngine) -> None:
    request = request_for(four)
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool
    running = asyncio.create_task(read(request, SLOW_PID))
    await asyncio.sleep(0.1)
    await hot.close()
    assert await running > 0
    assert (hot.held, pool.checkedout()) == (0, 0)


async def test_a_statement_error_drops_the_connection(four: AsyncEngine) -> None:
    request = request_for(four)
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool
    kept = await read(request)
    bad: Any = select(cast(bindparam("n", type_=String), Integer))
    async with read_session(request) as session:
        with pytest.raises(sa_exc.DBAPIError) as caught:
            await driver.scalar(session, bad, {"n": "not a number"})
    assert unavailable_error(caught.value) is None  # a bug's 500, not a 503
    assert "parameters hidden" in str(caught.value)
    assert (hot.held, pool.checkedout()) == (0, 0)
    assert await read(request) != kept  # a fresh connection, kept again
    assert hot.held == 1
    await hot.close()


async def test_a_dropped_connection_answers_503_once(four: AsyncEngine) -> None:
    request = request_for(four)
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool
    a, b = await asyncio.gather(read(request, SLOW_PID), read(request, SLOW_PID))
    assert hot.held == 2 and a != b
    async with four.connect() as conn:  # PostgreSQL restarts: both kept backends go
        await conn.execute(
            text("SELECT pg_terminate_backend(p) FROM unnest(CAST(:ps AS int[])) AS p"),
            {"ps": [a, b]},
        )
        await conn.commit()
    await asyncio.sleep(0.1)
    with pytest.raises(sa_exc.DBAPIError) as dropped:
        await read(request)
    assert dropped.value.connection_invalidated
    assert unavailable_error(dropped.value) is not None  # 503 with Retry-After
    assert (hot.held, pool.checkedout()) == (0, 0)  # the idle twin went with it
    fresh = await read(request)
    assert fresh not in (a, b)
    await hot.close()


async def test_a_cancelled_read_drops_its_connection(four: AsyncEngine) -> None:
    request = request_for(four)
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool
    long: Any = select(literal_column("pg_backend_pid()"), literal_column("pg_sleep(30)"))
    running = asyncio.create_task(read(request, long))
    await asyncio.sleep(0.2)
    assert hot.held == 1
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (hot.held, pool.checkedout()) == (0, 0)
    assert await read(request) > 0  # nothing left half-read for the next one
    await hot.close()


async def test_a_connection_past_the_recycle_age_goes_back_to_the_pool(
    four: AsyncEngine,
) -> None:
    now = [1000.0]
    pool: Any = four.sync_engine.pool
    hot = driver.HotConnections(
        pool, four.dialect, limit=2, recycle_seconds=60, clock=lambda: now[0]
    )
    checkins: list[object] = []

    def checked_in(*args: object) -> None:
        checkins.append(args)

    event.listen(pool, "checkin", checked_in)
    compiled = driver.compile_for(PID, four.dialect)
    try:
        await hot.fetch(compiled, [])
        now[0] += 59
        await hot.fetch(compiled, [])
        assert checkins == [] and hot.held == 1
        now[0] += 2  # 61 s after its checkout
        assert await hot.fetch(compiled, []) is not None
        assert len(checkins) == 1 and hot.held == 1  # retired, another kept
    finally:
        await hot.close()
        event.remove(pool, "checkin", checked_in)
    assert pool.checkedout() == 0


async def test_which_setups_keep_connections(four: AsyncEngine) -> None:
    url = url_of(four)

    def limit(engine: AsyncEngine, **overrides: object) -> int | None:
        found = hot_connections(engine, make_settings(database_url=url, **overrides))
        return None if found is None else found.limit

    assert limit(four) == 2  # half the pool of four
    assert limit(four, database_hot_read_connections=1) == 1
    assert limit(four, database_hot_read_connections=0) is None
    assert limit(four, database_pgbouncer=True) is None  # statements need their transaction
    one = create_engine(make_settings(database_url=url, database_pool_size=1), url=url)
    wide = create_engine(make_settings(database_url=url, database_pool_size=40), url=url)
    try:
        assert limit(one) is None  # never the pool's only connection
        assert limit(wide) == 6  # the setting's default
    finally:
        await one.dispose()
        await wide.dispose()


async def test_the_app_hands_them_back_when_it_stops(four: AsyncEngine, tmp_path: Any) -> None:
    settings = make_settings(database_url=url_of(four), media_dir=str(tmp_path))
    app = create_app(settings, engine=four, configure_logs=False)
    pool: Any = four.sync_engine.pool
    async with app.router.lifespan_context(app):
        request = SimpleNamespace(app=app)
        await read(request)
        assert hot_of(request).held == 1
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0


async def test_fastapi_telemetry_is_off_unless_asked_for(four: AsyncEngine) -> None:
    url = url_of(four)
    quiet = create_app(make_settings(database_url=url), engine=four, configure_logs=False)
    asked = create_app(
        make_settings(database_url=url, telemetry=True), engine=four, configure_logs=False
    )
    assert not quiet._native_telemetry.enabled()
    assert (quiet._telemetry["tracing"], asked._telemetry["tracing"]) == (False, True)
