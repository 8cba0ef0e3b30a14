"""A filing's session (``db.get_filing_session``). Straight to PostgreSQL it
autocommits, so its prebuilt statements run as a resident's read's do: on the
process's kept connections, the session itself never begun. Whatever the ORM
does in it begins the session as usual and is committed, or rolled back on an
error, and its connection goes back. Behind PgBouncer and on SQLite it is the
writer's session. Real engines of their own: the rolled-back tests override
this dependency with their one connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import delete, literal_column, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.core import driver
from app.core.db import (
    create_read_sessionmaker,
    create_sessionmaker,
    filing_turn,
    get_filing_session,
)
from app.core.errors import TooManyRequests
from app.idempotency import service as idempotency
from app.models import IdempotencyRecord, SharedState
from app.routing import refcache
from tests.conftest import DEFAULT_NOW, make_settings
from tests.core.conftest import hot_of, url_of
from tests.core.test_hot_connections import PID

postgresql_only = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)


def request_for(engine: AsyncEngine, **overrides: object) -> Any:
    settings = make_settings(database_url=url_of(engine), **overrides)
    state = SimpleNamespace(
        engine=engine,
        settings=settings,
        sessionmaker=create_sessionmaker(engine),
        read_sessionmaker=create_read_sessionmaker(engine, settings),
    )
    # A filing's request: a JSON body, which the session does not read first.
    return SimpleNamespace(
        app=SimpleNamespace(state=state),
        method="POST",
        headers={"content-type": "application/json"},
    )


@pytest.fixture
async def filing(four: AsyncEngine) -> AsyncIterator[Any]:
    """A request of an app on the pool of four; its kept connections go back
    at the end, whatever the test asserted."""
    request = request_for(four)
    yield request
    await hot_of(request).close()


async def _drive(request: Any, work: Any) -> Any:
    """Run ``work(session)`` inside the dependency, as FastAPI does (an error
    thrown into the generator, then its end)."""
    gen = cast(AsyncGenerator[AsyncSession, None], get_filing_session(request))
    session = await anext(gen)
    try:
        result = await work(session)
    except BaseException as error:
        with pytest.raises(type(error)):
            await gen.athrow(error)
        raise
    with pytest.raises(StopAsyncIteration):
        await anext(gen)
    return session, result


@postgresql_only
async def test_its_statements_run_on_kept_connections_and_it_never_begins(
    four: AsyncEngine, filing: Any
) -> None:
    request = filing
    hot = hot_of(request)
    pool: Any = four.sync_engine.pool

    async def work(session: AsyncSession) -> tuple[int, int]:
        assert session.info.get(driver.BARE) is True
        first = await driver.scalar(session, PID, {})
        # The reference cache's token check (every use with 0 seconds) too.
        assert await refcache.get(session, request.app.state.settings) is loaded
        second = await driver.scalar(session, PID, {})
        assert not session.in_transaction()
        return first, second

    refcache.clear()
    async with AsyncSession(four) as s:  # loaded beforehand: a load begins its session
        loaded = await refcache.get(s, request.app.state.settings)
    session, (first, second) = await _drive(request, work)
    refcache.clear()
    assert first == second  # one kept connection, reused
    assert not session.in_transaction()
    assert (hot.held, hot.idle, pool.checkedout()) == (1, 1, 1)
    await hot.close()
    assert pool.checkedout() == 0


@postgresql_only
async def test_what_the_orm_adds_is_committed_and_its_connection_goes_back(
    four: AsyncEngine, filing: Any
) -> None:
    request = filing
    pool: Any = four.sync_engine.pool
    key = "test:filing-session:orm"

    async def work(session: AsyncSession) -> None:
        await driver.scalar(session, PID, {})  # kept
        session.add(SharedState(key=key, value="v", counter=1, expires_at=DEFAULT_NOW))

    try:
        session, _ = await _drive(request, work)
        assert not session.in_transaction()
        assert pool.checkedout() == hot_of(request).held == 1  # only the kept one
        async with AsyncSession(four) as check:
            found = await check.get(SharedState, key)
            assert found is not None and found.value == "v"
    finally:
        async with AsyncSession(four) as clean:
            await clean.execute(delete(SharedState).where(SharedState.key == key))
            await clean.commit()


@postgresql_only
async def test_a_case_left_in_it_costs_no_commit(four: AsyncEngine, filing: Any) -> None:
    """The filing leaves its written case in the session, persistent and
    unchanged: that transaction never took a connection, so nothing ends it."""
    request = filing
    pool: Any = four.sync_engine.pool

    async def work(session: AsyncSession) -> None:
        await driver.scalar(session, PID, {})
        written = SharedState(key="test:written", value="", counter=0, expires_at=DEFAULT_NOW)
        make_transient_to_detached(written)  # as filing.write_case leaves its case
        session.add(written)
        assert session.in_transaction() and not (session.new or session.dirty)

    session, _ = await _drive(request, work)
    assert session.in_transaction()  # not committed: there was nothing to commit
    assert pool.checkedout() == hot_of(request).held == 1


@postgresql_only
async def test_an_error_after_orm_work_closes_the_session_and_returns_its_connection(
    four: AsyncEngine, filing: Any
) -> None:
    request = filing
    pool: Any = four.sync_engine.pool
    seen: list[AsyncSession] = []

    async def work(session: AsyncSession) -> None:
        seen.append(session)
        await session.execute(text("select 1"))  # begins the session
        assert session.in_transaction()
        raise LookupError("the filing failed")

    with pytest.raises(LookupError):
        await _drive(request, work)
    assert not seen[0].in_transaction()
    assert pool.checkedout() == 0


@postgresql_only
async def test_a_cancelled_filing_leaves_no_connection_out(four: AsyncEngine, filing: Any) -> None:
    request = filing
    pool: Any = four.sync_engine.pool
    slow: Any = select(literal_column("pg_sleep(2)"))

    async def work(session: AsyncSession) -> None:
        await driver.scalar(session, slow, {})

    task = asyncio.create_task(_drive(request, work))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The kept connection that ran it was dropped (its state unknown), not kept.
    assert (hot_of(request).held, pool.checkedout()) == (0, 0)


@postgresql_only
async def test_an_error_after_statements_only_keeps_the_kept_connection(
    four: AsyncEngine, filing: Any
) -> None:
    """A refusal after the admission (a 429, a risky text) raises with no ORM
    work done: nothing to roll back, and the kept connection stays kept."""
    pool: Any = four.sync_engine.pool

    async def work(session: AsyncSession) -> None:
        await driver.scalar(session, PID, {})
        raise PermissionError("refused after the admission")

    with pytest.raises(PermissionError):
        await _drive(filing, work)
    assert (hot_of(filing).held, hot_of(filing).idle, pool.checkedout()) == (1, 1, 1)


@postgresql_only
async def test_a_record_dropped_before_a_refusal_stays_dropped(
    four: AsyncEngine, filing: Any
) -> None:
    """Over its limit, a filing's one statement has written the key's record
    already answered; ``idempotency.drop`` removes it and the 429 is raised.
    In autocommit the delete stands although the request ends in an error,
    so a later retry runs afresh."""
    values = idempotency.record_values(
        scope="test-drop", owner="citizen:1", key="k", fingerprint="f", now=DEFAULT_NOW
    )
    async with AsyncSession(four) as s:
        kept = IdempotencyRecord(**values | {"status_code": 201}, response={"sealed": "x"})
        s.add(kept)
        await s.flush()
        record_id = kept.id
        await s.commit()

    async def work(session: AsyncSession) -> None:
        await idempotency.abandon(session, record_id)  # unanswered only: this one stays
        assert await session.get(IdempotencyRecord, record_id) is not None
        await idempotency.abandon(session, record_id, answered=True)
        raise TooManyRequests("提交过于频繁")

    try:
        with pytest.raises(TooManyRequests):
            await _drive(filing, work)
        async with AsyncSession(four) as check:
            assert await check.get(IdempotencyRecord, record_id) is None
    finally:
        async with AsyncSession(four) as s:
            await s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.scope == "test-drop"))
            await s.commit()


@postgresql_only
async def test_an_unmarked_session_still_commits_and_returns_its_connection(
    four: AsyncEngine,
) -> None:
    """Should the read sessionmaker not allow statements outside the session,
    they run on the session's connection, which the end commits and returns."""
    request = request_for(four)
    plain = request.app.state.read_sessionmaker
    request.app.state.read_sessionmaker = lambda: plain()  # no bare_reads mark

    async def work(session: AsyncSession) -> int:
        assert not session.info.get(driver.BARE)
        pid = await driver.scalar(session, PID, {})
        assert session.in_transaction()
        return int(pid)

    session, pid = await _drive(request, work)
    assert pid > 0
    assert not session.in_transaction()
    assert four.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@postgresql_only
async def test_behind_pgbouncer_it_is_the_writers_transaction(four: AsyncEngine) -> None:
    request = request_for(four, database_pgbouncer=True)

    async def work(session: AsyncSession) -> bool:
        assert not session.info.get(driver.BARE)
        await session.execute(text("select 1"))
        in_tx = (await session.execute(text("select now() = statement_timestamp()"))).scalar()
        return bool(in_tx)

    _, same_instant = await _drive(request, work)
    # Inside one transaction now() stands still while statements move on.
    assert same_instant is False
    assert four.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_on_sqlite_it_is_the_writers_session(engine: AsyncEngine) -> None:
    request = request_for(engine)

    async def work(session: AsyncSession) -> None:
        assert not session.info.get(driver.BARE)

    await _drive(request, work)


@postgresql_only
async def test_concurrent_requests_read_the_reference_token_once(
    four: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the cache's bound passes under load, one request of the process
    reads the token; the others keep the reference they have meanwhile."""
    settings = make_settings(
        database_url=url_of(four),
        reference_cache_seconds=60,
    )
    refcache.clear()
    reads = 0
    real = refcache._token

    async def counted(session: AsyncSession) -> str:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)  # a slow round trip: the others arrive meanwhile
        return await real(session)

    try:
        async with AsyncSession(four) as s:
            first = await refcache.get(s, settings)
        monkeypatch.setattr(refcache, "_token", counted)
        slot = refcache._slots[str(four.url)]
        slot.checked_at -= timedelta(minutes=2).total_seconds()  # the bound has passed

        async def one() -> refcache.Reference:
            async with AsyncSession(four) as s:
                return await refcache.get(s, settings)

        got = await asyncio.gather(*(one() for _ in range(8)))
        assert reads == 1
        assert all(ref is first for ref in got)  # the token had not moved
        assert not slot.checking
    finally:
        refcache.clear()


def _gate_of(request: Any, permits: int = 1) -> asyncio.Semaphore:
    gate = asyncio.Semaphore(permits)
    request.app.state.read_sessionmaker.filing_gate = gate
    return gate


@postgresql_only
async def test_in_autocommit_a_turn_ends_with_its_statement(four: AsyncEngine, filing: Any) -> None:
    gate = _gate_of(filing)

    async def work(session: AsyncSession) -> None:
        assert session.info[driver.FILING_GATE] is gate
        async with filing_turn(session):
            assert gate.locked()
            await session.execute(text("select 1"))
        assert not gate.locked()  # the statement committed itself

    await _drive(filing, work)
    assert not gate.locked()


@postgresql_only
async def test_behind_pgbouncer_the_whole_session_holds_the_turn(four: AsyncEngine) -> None:
    """The writer's transaction holds the counter row to its commit, and its
    admission's rate-limit rows before it: the turn is taken before the
    session begins and given back when it has ended, and the statement does
    not ask for a second one (with one turn it would wait for itself)."""
    request = request_for(four, database_pgbouncer=True)
    gate = _gate_of(request)

    async def work(session: AsyncSession) -> None:
        assert gate.locked()
        assert session.info.get(driver.FILING_GATE) is None
        async with filing_turn(session):
            await session.execute(text("select 1"))

    await asyncio.wait_for(_drive(request, work), timeout=10)
    assert not gate.locked()

    await gate.acquire()  # another filing's turn
    waiting = asyncio.create_task(_drive(request, work))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # no session before a turn
    assert four.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    gate.release()
    await asyncio.wait_for(waiting, timeout=10)

    class Refused(Exception):
        pass

    async def fails(session: AsyncSession) -> None:
        await session.execute(text("select 1"))
        raise Refused

    with pytest.raises(Refused):
        await _drive(request, fails)  # rolled back, then the turn goes back
    assert not gate.locked()
    assert four.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_a_failed_filing_ends_the_writers_session_before_the_dependency_ends(
    engine: AsyncEngine,
) -> None:
    """On SQLite the writer's session holds the process's writer lock: an
    error must roll it back and free the lock as the dependency ends, not when
    an abandoned generator is finalised later (as an ``async for`` left it)."""
    request = request_for(engine)
    writers = request.app.state.sqlite_writers = asyncio.Lock()

    class Refused(Exception):
        pass

    async def fails(session: AsyncSession) -> None:
        assert writers.locked()
        await session.execute(text("select 1"))
        raise Refused

    with pytest.raises(Refused):
        await _drive(request, fails)
    assert not writers.locked()


@postgresql_only
async def test_a_failed_statement_gives_its_turn_back(four: AsyncEngine, filing: Any) -> None:
    gate = _gate_of(filing)

    async def work(session: AsyncSession) -> None:
        async with filing_turn(session):
            await session.execute(text("select 1 / 0"))

    with pytest.raises(DBAPIError):
        await _drive(filing, work)
    assert not gate.locked()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_on_sqlite_there_is_no_gate(engine: AsyncEngine) -> None:
    request = request_for(engine)

    async def work(session: AsyncSession) -> None:
        assert session.info.get(driver.FILING_GATE) is None
        async with filing_turn(session):  # the process's writer lock already queues
            await session.execute(text("select 1"))

    await _drive(request, work)
