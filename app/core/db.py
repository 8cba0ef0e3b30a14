"""Engine, sessions and the declarative base.

The request owns the transaction (``get_session``): services flush, never
commit. SQLite and PostgreSQL behave the same here: SQLite gets foreign keys,
WAL, a busy timeout and real SAVEPOINTs (pysqlite's own transaction handling
is switched off so SQLAlchemy emits BEGIN itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, cast

from fastapi import Request
from sqlalchemy import DateTime, MetaData, event, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from app.core import driver, forms, jsoncodec, pgbouncer
from app.core.config import Settings
from app.core.pool import FairAsyncAdaptedQueuePool

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# An execution option marking a read-only session's connection.
READ_ONLY = "ydt_read_only"
# An execution option marking a connection whose statements each commit on
# their own (SQLite: no BEGIN is sent), for a writer of one statement at a
# time that needs no transaction: the shared store's counters (core/shared.py).
SINGLE_STATEMENTS = "ydt_single_statements"
# Connections kept per process on SQLite (one writer at a time; readers share).
SQLITE_POOL_SIZE = 8


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type; without this a value read back is naive and
    comparing it with the clock raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}

    @classmethod
    def built(cls, **values: Any) -> Self:
        """A new transient instance holding ``values``, made as SQLAlchemy's
        loader makes one: the instance state, then its dict filled.

        The constructor fires an attribute event per value; for the four rows a
        filing builds (the case, two events, the notice) that was about a tenth
        of its CPU (bench/README.md). A flush inserts a pending object from the
        same dict either way, Python-side defaults included, and later
        assignments go through the instrumented attributes as usual. Column
        attributes only: a relationship set this way would skip its backref.
        """
        found = _BUILDERS.get(cls)
        if found is None:
            mapper = inspect(cls)
            found = _BUILDERS[cls] = (
                mapper.class_manager,
                frozenset(p.key for p in mapper.column_attrs),
            )
        manager, columns = found
        if not columns.issuperset(values):
            unknown = sorted(set(values) - columns)
            raise TypeError(f"{cls.__name__}.built: not column attributes: {unknown}")
        obj: Self = cast("Self", manager.new_instance())
        obj.__dict__.update(values)
        return obj


_BUILDERS: dict[type, tuple[Any, frozenset[str]]] = {}


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin, so
        # SAVEPOINT and per-test rollback work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, reset_state: Any) -> None:
        # The pool's reset on check-in, only when there is something to end
        # (SQLAlchemy's "custom reset-on-return" recipe; the engine is made
        # with pool_reset_on_return=None). aiosqlite's rollback is a hop to its
        # thread even outside a transaction: one of the two hops of every read.
        native = dbapi_connection.driver_connection
        if native is None or native.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers: IMMEDIATE, so a transaction that reads then writes waits its
        # turn instead of losing to a concurrent writer with SQLITE_BUSY.
        # Readers (``create_read_sessionmaker``) never take the write lock and,
        # under WAL, run beside the one writer.
        # Readers send no BEGIN at all: each statement reads one consistent
        # snapshot on its own, and a thread hop to aiosqlite is saved.
        options = conn.get_execution_options()
        if not options.get(READ_ONLY, False) and not options.get(SINGLE_STATEMENTS, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


# The interpreter's thread switch interval on the embedded default (seconds;
# CPython's default is 0.005).
SQLITE_SWITCH_INTERVAL = 0.0005


def tune_interpreter(engine: AsyncEngine) -> None:
    """On SQLite, let the driver's thread have the GIL sooner.

    aiosqlite runs every statement on its own thread and hands the result back
    to the event loop; under load the loop thread rarely blocks, so the driver
    thread waits up to the switch interval (5 ms) for the GIL at each hop. At
    0.5 ms the embedded default served about 10% more residents' reads and 7%
    more filings on two cores, back to back (bench/README.md). PostgreSQL's
    driver runs in the event loop itself: nothing to tune there."""
    if engine.dialect.name == "sqlite":
        sys.setswitchinterval(SQLITE_SWITCH_INTERVAL)


# id(url) -> (the URL, its rendering): a URL never changes once made.
_DATABASE_KEYS: dict[int, tuple[Any, str]] = {}


def database_key(bind: Any) -> str:
    """The database an engine or connection (sync or async) talks to, as its
    full URL. Rendered once per URL: a filing asked about seven times (the
    reference cache, the shared store), each a rendering with quoting."""
    url = getattr(bind, "engine", bind).url
    found = _DATABASE_KEYS.get(id(url))
    if found is not None and found[0] is url:
        return found[1]
    key = str(url.render_as_string(hide_password=False))
    _DATABASE_KEYS[id(url)] = (url, key)
    return key


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    url = url or settings.database_url
    # Statement parameters stay out of error messages (they reach the logs, and
    # a filing's carry a resident's contact); echo, a debugging aid, shows them.
    kwargs: dict[str, Any] = {
        "echo": settings.database_echo,
        "hide_parameters": not settings.database_echo,
        "json_serializer": jsoncodec.dumps,
    }
    if url.startswith("sqlite"):
        path = settings.sqlite_path() if url == settings.database_url else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:"):
            kwargs["poolclass"] = NullPool
        else:
            # Connections are kept: opening one per request cost a thread, a
            # file open and four PRAGMAs. SQLite's locks, not the pool, order
            # the writers; readers share the pool beside them.
            kwargs.update(
                pool_size=SQLITE_POOL_SIZE, max_overflow=0, poolclass=FairAsyncAdaptedQueuePool
            )
        kwargs["pool_reset_on_return"] = None  # reset by _configure_sqlite's listener
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    # No pre-ping: asyncpg's ping is BEGIN; ROLLBACK, a round trip per checkout
    # (9 of a filing's 37, bench/). A connection PostgreSQL dropped fails its
    # first statement instead; SQLAlchemy then invalidates the whole pool, and
    # the request answers 503 (app/core/errors.py), never 500. ``pool_recycle``
    # retires connections before firewalls and PgBouncer's timeouts do.
    # No overflow: connections opened past the pool were closed on check-in and
    # reopened at the next burst (churn at 16 concurrent requests per worker).
    # Waiters served in order (app/core/pool.py).
    kwargs.update(
        poolclass=FairAsyncAdaptedQueuePool,
        pool_size=settings.database_pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        pool_recycle=settings.database_pool_recycle_seconds or -1,
    )
    kwargs.update(pgbouncer.engine_options(settings, url))  # empty unless behind PgBouncer
    return create_async_engine(url, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def autocommit_allowed(engine: AsyncEngine, settings: Settings) -> bool:
    """Statements outside a transaction: on PostgreSQL, unless behind PgBouncer
    in transaction mode, which may hand a prepared statement's execution to
    another server connection than its preparation outside a transaction
    ("prepared statement … does not exist", found by the multi-instance test)."""
    return engine.dialect.name == "postgresql" and not settings.database_pgbouncer


def create_read_sessionmaker(
    engine: AsyncEngine, settings: Settings
) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read.

    PostgreSQL: autocommit, so a read sends no BEGIN and no COMMIT (two of a
    one-statement read's three round trips); behind PgBouncer a transaction.
    SQLite: a deferred BEGIN, which never takes the write lock. A service that
    writes must use ``get_session``.
    """
    options: dict[str, Any] = {READ_ONLY: True}
    if autocommit_allowed(engine, settings):
        options["isolation_level"] = "AUTOCOMMIT"
    maker = async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, execution_options=options
    )
    # Read by read_session: its prebuilt statements may borrow a pool
    # connection each (app/core/driver.py), since none needs a transaction.
    maker.bare_reads = autocommit_allowed(engine, settings) or (  # type: ignore[attr-defined]
        engine.dialect.driver == "aiosqlite" and not isinstance(engine.pool, NullPool)
    )
    maker.hot_connections = hot_connections(engine, settings)  # type: ignore[attr-defined]
    maker.filing_gate = asyncio.Semaphore(settings.filing_statements_in_flight)  # type: ignore[attr-defined]
    return maker


class ReadSessionWrite(RuntimeError):
    """A write in a session opened by ``read_session``: a bug of the route,
    which must take ``get_session``. Refused before it reaches the database,
    where it would autocommit (PostgreSQL) or take the write lock (SQLite)."""


# Every session's writes pass here; only ``read_session``'s (marked in
# ``session.info``; the filing's session comes from the same sessionmaker and
# writes) are refused. On the Session class, not the read sessionmaker, so a
# session the tests hand out instead is guarded alike.
@event.listens_for(Session, "do_orm_execute")
def _refuse_read_session_dml(state: ORMExecuteState) -> None:
    if state.statement.is_dml and state.session.info.get(READ_ONLY, False):
        raise ReadSessionWrite("a read session cannot write: use get_session")


@event.listens_for(Session, "before_flush")
def _refuse_read_session_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY, False) and (session.new or session.dirty or session.deleted):
        raise ReadSessionWrite("a read session cannot write: use get_session")


def hot_connections(engine: AsyncEngine, settings: Settings) -> driver.HotConnections | None:
    """The connections this process keeps for the residents' one-statement reads
    (driver.HotConnections): PostgreSQL in autocommit only, and at most half
    the pool, so the rest of the app never runs short of connections."""
    if not autocommit_allowed(engine, settings) or engine.dialect.driver != "asyncpg":
        return None
    pool: Any = engine.sync_engine.pool
    size = pool.size() if hasattr(pool, "size") else 0
    limit = min(settings.database_hot_read_connections, size // 2)
    if limit <= 0:
        return None
    return driver.HotConnections(
        engine.sync_engine.pool,
        engine.dialect,
        limit=limit,
        recycle_seconds=float(settings.database_pool_recycle_seconds or -1),
    )


async def close_hot_connections(sessionmaker: object) -> None:
    """Hand a read sessionmaker's kept connections back to the pool (app shutdown)."""
    hot: driver.HotConnections | None = getattr(sessionmaker, "hot_connections", None)
    if hot is not None:
        await hot.close()


@contextlib.asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit when the block ends normally, roll back when it raises: the one
    shape of every request's session (writers, readers, replica readers)."""
    async with session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: commit on success, roll back on error.

    On SQLite, a process's writers queue on an asyncio lock first: SQLite's
    own busy handler makes a waiting writer sleep 1, 2, 5 ... 100 ms between
    tries, so eight concurrent filings spent most of their time asleep.

    A form's body is read before either lock or the session is taken
    (app/core/forms.py): a slow sender holds nothing of anyone else's.
    """
    await forms.read_first(request)
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    lock: asyncio.Lock | None = getattr(request.app.state, "sqlite_writers", None)
    async with contextlib.AsyncExitStack() as stack:
        if lock is not None:
            await stack.enter_async_context(lock)
        yield await stack.enter_async_context(transaction(sessionmaker()))


def _bare_session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncSession:
    """A session of the read sessionmaker whose prebuilt statements may run
    outside it (driver.BARE), on the process's kept connections if any."""
    session = sessionmaker()
    if getattr(sessionmaker, "bare_reads", False):
        session.info[driver.BARE] = True
        session.info[driver.HOT] = getattr(sessionmaker, "hot_connections", None)
    return session


@contextlib.asynccontextmanager
async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a request that only reads (``create_read_sessionmaker``).

    Nothing to commit: closing it hands the connection back, and the pool's
    reset ends whatever transaction there was (behind PgBouncer). The commit a
    writer's session ends with cost a one-statement read about a tenth of its
    CPU (bench/README.md). Changes left in it are a bug, refused loudly."""
    session = _bare_session(request.app.state.read_sessionmaker)
    session.info[READ_ONLY] = True
    try:
        yield session
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("a read session holds changes: use get_session to write")
    finally:
        # A session whose reads all borrowed a connection (driver.BARE) never
        # began and holds no object: nothing to release, and its close was
        # about 25 µs of SQLAlchemy bookkeeping per read (bench/README.md).
        if session.in_transaction() or session.identity_map or session.new:
            await session.close()


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """``read_session`` as a route's dependency, for a route that only reads:
    on SQLite it never takes the database's write lock (nor the process's
    writer lock), so a public page or a picker's list answers beside a
    long write instead of queueing behind it. A form's body is read first, as
    ``get_session`` does: the session's connection is not held while it arrives."""
    await forms.read_first(request)
    async with read_session(request) as session:
        yield session


async def get_filing_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The session of a filing. PostgreSQL: autocommit, because the filing's
    rows go out as one statement (app/complaints/filing_sql.py) that takes the
    day's counter row; inside a request transaction that lock would be held
    until the commit, one more round trip and a turn of a busy event loop
    later, and every filing would queue on it. SQLite, and PostgreSQL behind
    PgBouncer (``autocommit_allowed``): the writer session.

    In autocommit every statement is its own transaction, so the filing's
    prebuilt statements (the admission, the case) run as a read's do
    (driver.BARE): on a kept or borrowed connection, not the session's. The
    session's connection, its begin, commit and close were four greenlet
    switches and a checkout per filing (bench/README.md). Anything the ORM
    does (a rare pin of the taxonomy, freeing a key after a failure) begins
    the session as usual and is committed at the end."""
    state = request.app.state
    gate = getattr(state.read_sessionmaker, "filing_gate", None)
    if not autocommit_allowed(state.engine, state.settings):
        # Behind PgBouncer the counter row stays locked to the commit, so the
        # whole session takes the turn, before it locks anything: a turn
        # taken at the statement could wait on a filing whose statement waits
        # for a rate-limit row this one's admission holds, a deadlock no
        # database would see. SQLite's writers queue on the writer lock.
        # The writer's session is entered as a context, so an error of the
        # filing reaches it (its rollback, SQLite's writer lock) before this
        # ends; an ``async for`` left it to the generator's finalisation.
        postgresql = state.engine.dialect.name == "postgresql"
        turn = gate if postgresql and gate is not None else contextlib.nullcontext()
        async with turn, _PLAIN[get_session](request) as session:
            yield session
        return
    session = _bare_session(state.read_sessionmaker)
    session.info[driver.FILING_GATE] = gate
    try:
        yield session
    except BaseException:
        if _holds_connection(session):
            await session.close()  # rolls back what the ORM began
        raise
    # A filing leaves its case in the session (persistent, nothing to flush);
    # ending that transaction, which never had a connection, was two more
    # greenlet switches per filing for no statement. Whatever took the
    # session's connection (ORM work, or every statement if the session were
    # not marked) is committed here.
    if _holds_connection(session) or session.new or session.dirty or session.deleted:
        async with transaction(session):
            pass  # commits what the ORM began or holds, closes the session


@contextlib.asynccontextmanager
async def filing_turn(session: AsyncSession) -> AsyncIterator[None]:
    """Hold one of the process's turns (``driver.FILING_GATE``) for a statement
    that takes the day's counter row. Only a filing session in autocommit
    carries the gate (``get_filing_session``): there the statement is its own
    transaction and whoever waits for a turn holds no lock. Behind PgBouncer
    the whole filing session holds the turn instead, and on SQLite writers
    queue on the process's writer lock: there the statement just runs."""
    gate: asyncio.Semaphore | None = session.info.get(driver.FILING_GATE)
    if gate is None:
        yield
        return
    async with gate:
        yield


SessionDependency = Callable[[Request], AsyncIterator[AsyncSession]]


def _entered(
    request: Request, dependency: SessionDependency
) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
    """A session dependency entered inside a route, as FastAPI enters and
    leaves it; an override of it (``app.dependency_overrides``, as the tests
    set) is honoured as a route's dependency would honour it. The dependency
    takes the request, which must be its only parameter."""
    override = request.app.dependency_overrides.get(dependency)
    if override is not None:
        return contextlib.asynccontextmanager(override)(request)
    entered: contextlib.AbstractAsyncContextManager[AsyncSession] = _PLAIN[dependency](request)
    return entered


# Wrapped once (a filing enters one or two per request).
_PLAIN: dict[SessionDependency, Callable[[Request], Any]] = {
    d: contextlib.asynccontextmanager(d) for d in (get_session, get_filing_session)
}


def filing_session(request: Request) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
    """``get_filing_session`` for the filing, which solves no dependency (its
    hot lane, app/core/hotpath.py) and may need two sessions (a text WeChat
    judges between them, app/complaints/router.py)."""
    return _entered(request, get_filing_session)


def write_session(request: Request) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
    """``get_session`` entered inside a route rather than as its dependency,
    for a write that must first wait on something outside the database
    (WeChat's text check, app/moderation/dependencies.py) holding nothing: a
    dependency's session, on SQLite, holds the process's writer lock from the
    start of the request."""
    return _entered(request, get_session)


def _holds_connection(session: AsyncSession) -> bool:
    """Whether the session's transaction has taken a connection (``add`` alone
    begins a transaction without one). SQLAlchemy keeps that in a private
    mapping; if it ever moves, assume a connection, and commit."""
    began: Any = session.sync_session.get_transaction()
    if began is None:
        return False
    return bool(getattr(began, "_connections", True))


# Expression indexes: SQLite's reflection cannot see them, so autogenerate
# would propose them forever, and a batch-mode rebuild of their table drops
# them (a migration that rebuilds complaints must restore them, as 0009 does).
# Migration 0008 writes them by hand; tests/test_migrations.py checks they exist.
EXPRESSION_INDEXES = frozenset({"ix_complaints_queue_open", "ix_complaints_queue_done"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's filter for what autogenerate compares."""
    return not (type_ == "index" and name in EXPRESSION_INDEXES)
