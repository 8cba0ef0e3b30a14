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

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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


class Prebound(Mapping[str, Any]):
    """Parameters whose owner puts them in the driver's order and form itself.

    A filing's ~140 values were gathered into dicts (a row's, then a prefixed
    one, then the statement's), each looked up again by name and passed
    through its processor here: a tenth of the app's CPU per filing
    (bench/README.md). ``arguments`` builds the list straight from the
    objects; the mapping (built on first use) serves the paths that go
    through ``session.execute`` instead, so both give the same values."""

    __slots__ = ("_arguments", "_build", "_mapping")

    def __init__(
        self,
        arguments: Callable[[Compiled], list[Any]],
        mapping: Callable[[], dict[str, Any]],
    ) -> None:
        self._arguments = arguments
        self._build = mapping
        self._mapping: dict[str, Any] | None = None

    def arguments(self, compiled: Compiled) -> list[Any]:
        return self._arguments(compiled)

    def _values(self) -> dict[str, Any]:
        if self._mapping is None:
            self._mapping = self._build()
        return self._mapping

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())


def _arguments(compiled: Compiled, params: Mapping[str, Any]) -> list[Any]:
    if isinstance(params, Prebound):
        return params.arguments(compiled)
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
# Beside it, the process's kept connections (``HotConnections``), if any.
HOT = "ydt.hot_connections"
# A filing session's bound on the filing statements in flight (an
# ``asyncio.Semaphore``, ``db.get_filing_session``), in autocommit only.
FILING_GATE = "ydt.filing_gate"


async def rows(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any]
) -> Sequence[tuple[Any, ...]]:
    """Every row of ``stmt`` with ``params``, values as SQLAlchemy would give them."""
    bind = session.bind
    if session.info.get(BARE) and isinstance(bind, AsyncEngine) and not session.in_transaction():
        return await _bare_rows(bind, stmt, params, session.info.get(HOT))
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
    engine: AsyncEngine,
    stmt: Executable,
    params: Mapping[str, Any],
    hot: HotConnections | None = None,
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
    records = await hot.fetch(compiled, args) if hot is not None else None
    if records is None:  # none kept, or every kept one busy
        records = await greenlet_spawn(
            _on_borrowed, engine.sync_engine.pool, dialect, compiled, args
        )
    return _processed(compiled, records)


class HotConnections:
    """A few pool connections a process keeps checked out for the residents'
    one-statement reads and a filing's statements (autocommit: each its own
    transaction), used on the driver without a greenlet.

    A borrowed connection (``_on_borrowed``) costs a greenlet, whose switches
    copy the C stack of the whole ASGI middleware chain, and the pool's
    checkout and check-in: in process, 0.26 ms of CPU per resident's read
    against 0.12 ms on a kept connection (bench/README.md). A kept connection
    serves one statement at a time: it is taken from the idle list, used and
    put back, all on the event loop. When every kept one is busy, or the cap
    is reached, the read borrows from the pool as before, so a burst never
    waits here and the pool keeps the rest of its connections.

    A kept connection is outside any transaction (PostgreSQL in autocommit,
    as the pool's reset left it), retired once older than the pool's recycle
    age, and dropped (terminated, its pool slot freed) after any error or
    cancellation in its statement, since its protocol state is then unknown.
    A disconnect drops the idle ones too: they most likely went with it, and
    only this one read answers 503. ``close`` hands them all back; the app
    calls it when it stops."""

    def __init__(
        self,
        pool: Pool,
        dialect: Dialect,
        *,
        limit: int,
        recycle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._dialect = dialect
        self._limit = limit
        self._recycle = recycle_seconds  # < 0: never
        self._clock = clock
        self._idle: list[tuple[PoolProxiedConnection, float]] = []
        self._held = 0  # idle and in use
        self._closed = False

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def held(self) -> int:
        return self._held

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def fetch(self, compiled: Compiled, args: list[Any]) -> Any | None:
        """The statement's records, or None when no kept connection is free."""
        taken = await self._take()
        if taken is None:
            return None
        fairy, since = taken
        adapted: Any = fairy.dbapi_connection
        try:
            records = await _fetch(self._dialect, fairy.driver_connection, compiled, args)
        except BaseException as error:
            if not isinstance(error, Exception):  # a cancellation: nothing to translate
                self._drop(fairy, error)
                raise
            # Translated first: on a terminated connection the adapter would
            # call any error a disconnect.
            failure = _translate(self._dialect, adapted, compiled, args, error)
            self._drop(fairy, failure.orig)
            if failure.disconnect:
                self._drop_idle(failure.orig)
            raise failure.error from error
        if self._closed:
            await self._hand_back(fairy)
        else:
            self._idle.append((fairy, since))
        return records

    async def _take(self) -> tuple[PoolProxiedConnection, float] | None:
        if self._closed:
            return None
        while self._idle:
            fairy, since = self._idle.pop()
            if 0 <= self._recycle < self._clock() - since:
                await self._hand_back(fairy)  # the pool recycles it at its next checkout
                continue
            return fairy, since
        if self._held >= self._limit:
            return None
        self._held += 1
        try:
            fairy = await greenlet_spawn(self._pool.connect)
        except Exception:
            # The database may be down: the borrowed path raises it as it always has.
            self._held -= 1
            return None
        except BaseException:
            self._held -= 1
            raise
        return fairy, self._clock()

    async def _hand_back(self, fairy: PoolProxiedConnection) -> None:
        self._held -= 1
        await greenlet_spawn(fairy.close)

    def _drop(self, fairy: PoolProxiedConnection, error: BaseException | None) -> None:
        # Outside a greenlet SQLAlchemy terminates the connection at once (no IO
        # to await) and returns its slot to the pool.
        self._held -= 1
        fairy.invalidate(error)

    def _drop_idle(self, error: BaseException) -> None:
        idle, self._idle = self._idle, []
        for fairy, _ in idle:
            self._drop(fairy, error)

    async def close(self) -> None:
        """Hand every idle connection back; one in use goes back when its read ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for fairy, _ in idle:
            await self._hand_back(fairy)


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


async def in_transaction(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any]
) -> Sequence[tuple[Any, ...]]:
    """``stmt`` inside the session's own transaction, on SQLite's driver.

    Through SQLAlchemy's aiosqlite adapter a statement is three or four hops
    to aiosqlite's thread (a cursor, the statement, its rows, the close), and
    the embedded filing's kernel time was mostly those hops (bench/README.md).
    ``execute_fetchall`` is one. The adapter keeps no state of its own about
    statements between cursors (the transaction is SQLite's: its BEGIN was
    sent on this connection), so a statement run beside it is in the same
    transaction. Anywhere else, ``session.execute``."""
    conn = await session.connection()
    if conn.dialect.driver != "aiosqlite":
        result = await conn.execute(stmt, dict(params))
        return [tuple(r) for r in result.all()] if result.returns_rows else []
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    native: Any = raw.driver_connection
    compiled = compile_for(stmt, conn.dialect)
    args = _arguments(compiled, params)
    try:
        records = await native.execute_fetchall(compiled.sql, args)
    except Exception as error:
        failure = _translate(conn.dialect, adapted, compiled, args, error)
        if failure.disconnect:
            await conn.invalidate(failure.orig)
        raise failure.error from error
    return _processed(compiled, records)
