"""A read session's statements on a pool connection of their own (driver.BARE).

``db.read_session`` marks its session where statements may run outside a
transaction (PostgreSQL in autocommit, SQLite with a kept pool); until the
session begins one, each prebuilt statement borrows a pool connection and
hands it straight back. These use real engines of their own (the rolled-back
tests bind sessions to one connection, where the mark never applies)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Integer, String, bindparam, cast, literal_column, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import driver
from app.core.db import create_engine, create_read_sessionmaker, read_session
from app.core.errors import unavailable_error
from tests.conftest import make_settings

postgresql_only = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)

ONE: Any = select(literal_column("1"))
PID: Any = {
    "postgresql": select(literal_column("pg_backend_pid()")),
    "sqlite": select(literal_column("1")),
}


def request_for(engine: AsyncEngine, **overrides: object) -> Any:
    url = engine.url.render_as_string(hide_password=False)
    settings = make_settings(database_url=url, **overrides)
    maker = create_read_sessionmaker(engine, settings)
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(read_sessionmaker=maker)))


async def test_a_read_borrows_and_returns_a_connection_outside_the_session(
    small: AsyncEngine,
) -> None:
    pool: Any = small.sync_engine.pool
    async with read_session(request_for(small)) as session:
        assert session.info.get(driver.BARE) is True
        assert await driver.scalar(session, ONE, {}) == 1
        # Handed back at once; the session itself never began.
        assert pool.checkedout() == 0
        assert not session.in_transaction()
        # A second read through the session works beside it (the same, only, connection).
        assert (await session.execute(text("SELECT 2"))).scalar_one() == 2
        assert pool.checkedout() == 1
        # Once the session has begun, prebuilt statements use its connection.
        assert await driver.scalar(session, ONE, {}) == 1
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0


async def test_values_on_a_borrowed_connection_are_sqlalchemys(small: AsyncEngine) -> None:
    stmt = select(
        cast(bindparam("n", type_=String), Integer).label("n"),
        bindparam("s", type_=String).label("s"),
    )
    async with AsyncSession(small) as plain:
        reference = await driver.first(plain, stmt, {"n": "42", "s": "监督"})
    async with read_session(request_for(small)) as session:
        bare = await driver.first(session, stmt, {"n": "42", "s": "监督"})
    assert bare == reference == (42, "监督")


async def test_a_statement_error_is_translated_and_the_connection_returned(
    small: AsyncEngine,
) -> None:
    bad = select(cast(bindparam("n", type_=String), Integer))
    pool: Any = small.sync_engine.pool
    async with read_session(request_for(small)) as session:
        if small.dialect.name == "postgresql":
            with pytest.raises(sa_exc.DBAPIError) as caught:
                await driver.scalar(session, bad, {"n": "not a number"})
            assert unavailable_error(caught.value) is None  # a 500-class bug, not a 503
            # Parameters stay out of the message, as SQLAlchemy's own (logs).
            assert "parameters hidden" in str(caught.value)
        missing: Any = select(literal_column("no_such_column"))
        with pytest.raises(sa_exc.DBAPIError):
            await driver.scalar(session, missing, {})
        assert pool.checkedout() == 0
        assert await driver.scalar(session, ONE, {}) == 1


@postgresql_only
async def test_a_dropped_connection_is_invalidated_and_answers_503(small: AsyncEngine) -> None:
    async with read_session(request_for(small)) as session:
        pid = await driver.scalar(session, PID["postgresql"], {})
    killer = create_engine(
        make_settings(database_url=small.url.render_as_string(hide_password=False)),
        url=small.url.render_as_string(hide_password=False),
    )
    try:
        async with killer.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            await conn.commit()
    finally:
        await killer.dispose()
    async with read_session(request_for(small)) as session:
        with pytest.raises(sa_exc.DBAPIError) as dropped:
            await driver.scalar(session, ONE, {})
    assert dropped.value.connection_invalidated
    assert unavailable_error(dropped.value) is not None
    assert small.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    async with read_session(request_for(small)) as session:  # a fresh connection
        again = await driver.scalar(session, PID["postgresql"], {})
    assert again != pid


@postgresql_only
async def test_behind_pgbouncer_reads_keep_their_transaction(small: AsyncEngine) -> None:
    """Prepared statements must not outlive a transaction there, so no borrowing."""
    async with read_session(request_for(small, database_pgbouncer=True)) as session:
        assert driver.BARE not in session.info
        assert await driver.scalar(session, ONE, {}) == 1
        assert session.in_transaction()


async def test_a_session_bound_to_a_connection_is_never_bypassed(small: AsyncEngine) -> None:
    """As the rolled-back tests bind theirs: a borrowed connection would not
    see the test's uncommitted rows."""
    async with small.connect() as conn:
        await conn.execute(text("CREATE TEMP TABLE bare_probe (v INTEGER)"))
        await conn.execute(text("INSERT INTO bare_probe VALUES (7)"))
        session = AsyncSession(bind=conn)
        session.info[driver.BARE] = True
        probe: Any = select(literal_column("v")).select_from(text("bare_probe"))
        assert await driver.scalar(session, probe, {}) == 7
        await session.close()
        await conn.rollback()
