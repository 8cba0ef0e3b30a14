"""Prebuilt statements run on the driver's connection beneath a session.

For the few statements of the hot paths (a filing's one statement, its
rate-limit hit and idempotency key, a resident's one-statement read),
SQLAlchemy's execution layer (cache-key lookup, ``construct_params`` over up
to 120 values, the cursor adapter, result processing) cost about as much CPU
as everything else in the request (issue 16 measured the same SQL at 26.5%
of the bare INSERT through ``session.execute`` and 33% on the driver).

So a statement that is built once (module-level, bind parameters for every
value) is compiled once per dialect to the driver's SQL, with the bind and
result processors of its column types, and run by the driver directly.
The statement stays a SQLAlchemy construct, so it follows the models, and
the processors are the ones SQLAlchemy would apply, so values read and
written are the same either way (``tests/core/test_driver.py`` compares).

Only when the session's connection is outside a transaction: PostgreSQL in
autocommit (not behind PgBouncer, where prepared statements must not outlive
a transaction), or SQLite with no BEGIN sent (a read session), where
aiosqlite runs the statement and fetches its rows in one hop to its thread
instead of one per cursor call. Inside a transaction the adapter owns its
state, so the same statement goes through ``session.execute``.

Driver errors are translated as SQLAlchemy would (``DBAPIError``, connection
invalidated on a disconnect), so the error boundary still answers 503 for a
database that is down and never 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import Pool, PoolProxiedConnection
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import await_, greenlet_spawn

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    # (name, default value, bind processor) per positional parameter.
    binds: tuple[tuple[str, Any, Processor], ...]
    results: tuple[Processor, ...]


# Keyed by the statement object itself: callers keep their statements for
# the life of the process (module-level caches), so ids are never reused.
_COMPILED: dict[tuple[int, str], tuple[Executable, Compiled]] = {}


def compile_for(stmt: Executable, dialect: Dialect) -> Compiled:
    key = (id(stmt), dialect.name)
    found = _COMPILED.get(key)
    if found is not None and found[0] is stmt:
        return found[1]
    compiled: Any = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
    binds: list[tuple[str, Any, Processor]] = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.expanding:
            raise ValueError(f"{name}: expanding parameters cannot be prebuilt (use ANY)")
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((name, bind.value if not bind.required else None, processor))
    results = tuple(
        column[3].dialect_impl(dialect).result_processor(dialect, None)
        for column in compiled._result_columns
    )
    made = Compiled(compiled.string, tuple(binds), results)
    _COMPILED[key] = (stmt, made)
    return made


def _arguments(compiled: Compiled, params: Mapping[str, Any]) -> list[Any]:
    out = []
    for name, default, processor in compiled.binds:
        value = params.get(name, default)
        out.append(processor(value) if processor is not None and value is not None else value)
    return out


async def _driver(conn: AsyncConnection) -> tuple[Any, Any] | None:
    """(the adapter, the driver's connection), when statements may bypass the
    adapter: the connection is outside any transaction (PostgreSQL in
    autocommit; SQLite with no BEGIN sent, as for a read session)."""
    driver = conn.dialect.driver
    if driver not in ("asyncpg", "aiosqlite"):
        return None
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    native: Any = raw.driver_connection
    if adapted is None or native is None:
        return None
    if driver == "asyncpg":
        return (adapted, native) if adapted.autocommit else None
    return None if native.in_transaction else (adapted, native)


# A session's ``info`` key, set by ``db.read_session`` where a statement may
# run outside any transaction: until the session has begun one, its
# statements here each borrow a pool connection for themselves.
BARE = "ydt.bare_reads"


async def rows(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any]
) -> Sequence[tuple[Any, ...]]:
    """Every row of ``stmt`` with ``params``, values as SQLAlchemy would give them."""
    bind = session.bind
    if session.info.get(BARE) and isinstance(bind, AsyncEngine) and not session.in_transaction():
        return await _bare_rows(bind, stmt, params)
    conn = await session.connection()
    found = await _driver(conn)
    if found is None:
        return [tuple(r) for r in (await session.execute(stmt, dict(params))).all()]
    adapted, raw = found
    compiled = compile_for(stmt, conn.dialect)
    args = _arguments(compiled, params)
    try:
        records = await _fetch(conn.dialect, raw, compiled, args)
    except Exception as error:  # translated as the adapter would, then wrapped
        failure = _translate(conn.dialect, adapted, compiled, args, error)
        if failure.disconnect:
            await conn.invalidate(failure.orig)
        raise failure.error from error
    return _processed(compiled, records)


async def _bare_rows(
    engine: AsyncEngine, stmt: Executable, params: Mapping[str, Any]
) -> Sequence[tuple[Any, ...]]:
    """A read's statement on a pool connection of its own, without the session.

    The session's connection (its transaction object, the connection's
    execution options set and reset, the close) was a fifth of a resident's
    read (bench/README.md), for one statement that needs none of it: the
    connection is outside any transaction, as the pool's reset left it, and
    the statement is its own snapshot. A service's rare second read takes the
    session as usual. Checkout, statement and check-in run in one greenlet, as
    SQLAlchemy's own do (either end may have to open or close a connection):
    a greenlet apiece was 8 µs more per read, and a cancellation anywhere
    still returns the connection (the ``finally`` runs inside the greenlet)."""
    dialect = engine.dialect
    compiled = compile_for(stmt, dialect)
    args = _arguments(compiled, params)
    records = await greenlet_spawn(_on_borrowed, engine.sync_engine.pool, dialect, compiled, args)
    return _processed(compiled, records)


def _on_borrowed(pool: Pool, dialect: Dialect, compiled: Compiled, args: list[Any]) -> Any:
    fairy: PoolProxiedConnection = pool.connect()
    try:
        adapted: Any = fairy.dbapi_connection
        raw: Any = fairy.driver_connection
        if _in_transaction(dialect, adapted, raw):  # the pool's reset should make this impossible
            raise RuntimeError("a pooled connection was handed out inside a transaction")
        try:
            return await_(_fetch(dialect, raw, compiled, args))
        except Exception as error:
            failure = _translate(dialect, adapted, compiled, args, error)
            if failure.disconnect:
                fairy.invalidate(failure.orig)
            raise failure.error from error
    finally:
        fairy.close()


def _in_transaction(dialect: Dialect, adapted: Any, raw: Any) -> bool:
    if dialect.driver == "asyncpg":
        return bool(adapted._transaction is not None or raw.is_in_transaction())
    return bool(raw.in_transaction)


async def _fetch(dialect: Dialect, raw: Any, compiled: Compiled, args: list[Any]) -> Any:
    if dialect.driver == "asyncpg":
        return await raw.fetch(compiled.sql, *args)
    # One hop to aiosqlite's thread instead of one per cursor call.
    return await raw.execute_fetchall(compiled.sql, args)


def _processed(compiled: Compiled, records: Any) -> Sequence[tuple[Any, ...]]:
    processors = compiled.results
    if not any(processors):
        return [tuple(r) for r in records]
    return [
        tuple(p(v) if p is not None else v for p, v in zip(processors, r, strict=True))
        for r in records
    ]


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException  # what to raise (from the driver's own error)
    orig: BaseException  # the DBAPI-level error, for invalidating the connection
    disconnect: bool


def _translate(
    dialect: Dialect, adapted: Any, compiled: Compiled, args: list[Any], error: Exception
) -> _Failure:
    """A driver error as SQLAlchemy's execution would raise it: the adapter's
    DBAPI error wrapped in ``DBAPIError`` (a disconnect marked so, for the
    503 and the pool's invalidation); anything else (a cancellation, a bug) as
    it is."""
    orig: Exception = error
    try:
        adapted._handle_exception(error)  # raises the DBAPI-level error
    except Exception as dbapi_error:
        orig = dbapi_error
    dbapi: Any = dialect.loaded_dbapi
    if not isinstance(orig, dbapi.Error):
        return _Failure(orig, orig, False)
    disconnect = bool(dialect.is_disconnect(orig, adapted, None))
    # Parameters are left out of the message: a filing's carry a resident's
    # contact, and error messages reach the logs.
    wrapped = sa_exc.DBAPIError.instance(
        compiled.sql,
        args,
        orig,
        dbapi.Error,
        hide_parameters=True,
        connection_invalidated=disconnect,
        dialect=dialect,
    )
    return _Failure(wrapped, orig, disconnect)


async def first(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    found = await rows(session, stmt, params)
    return found[0] if found else None


async def scalar(session: AsyncSession, stmt: Executable, params: Mapping[str, Any]) -> Any:
    found = await first(session, stmt, params)
    return found[0] if found is not None else None
