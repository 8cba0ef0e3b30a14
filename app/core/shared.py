"""State several workers and machines must agree on: rate-limit windows and
cached values (the WeChat access token). Redis when ``YDT_REDIS_URL`` is set,
else a database table; never one process's memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Integer, String, bindparam, delete, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core import driver, pgbouncer
from app.core.config import Settings
from app.core.db import SINGLE_STATEMENTS, Base, database_key
from app.models import SharedState


class SharedStore(Protocol):
    async def hit(self, key: str, *, window_seconds: int, now: datetime) -> tuple[int, int]:
        """Count one hit in the current fixed window; return (count, seconds left)."""

    async def hit_many(
        self, hits: Sequence[tuple[str, int]], *, now: datetime
    ) -> list[tuple[int, int]]:
        """``hit`` for several (key, window seconds) at once: one round trip."""

    async def get(self, key: str, *, now: datetime) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl_seconds: int, now: datetime) -> None: ...


# No overflow: connections opened past the pool were closed on check-in and
# reopened at the next burst (py-spy saw asyncpg connecting under load).
SHARED_POOL_SIZE = 5
SHARED_POOL_OVERFLOW = 0


# Built once per dialect and row count, with bind parameters: SQLAlchemy then
# reuses the compiled statement instead of building and keying a fresh insert
# on every hit (about a sixth of a filing's CPU, bench/).
_HITS: dict[tuple[str, int], Any] = {}


def _hit_statement(dialect: str, n: int) -> Any:
    found = _HITS.get((dialect, n))
    if found is not None:
        return found
    # The table, not the class: an ORM insert executed with a dict of values
    # would be taken as a bulk insert of that dict instead of bound parameters.
    table: Any = SharedState.__table__
    upsert = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    key_type, ends_type = SharedState.__table__.c.key.type, SharedState.__table__.c.expires_at.type
    stmt = (
        upsert.values(
            [
                {
                    "key": bindparam(f"k{i}", type_=key_type),
                    "value": "",
                    "counter": 1,
                    "expires_at": bindparam(f"e{i}", type_=ends_type),
                }
                for i in range(n)
            ]
        )
        .on_conflict_do_update(index_elements=[table.c.key], set_={"counter": table.c.counter + 1})
        .returning(table.c.key, table.c.counter)
    )
    _HITS[(dialect, n)] = stmt
    return stmt


def _window(now: datetime, window_seconds: int) -> tuple[int, datetime]:
    start = int(now.timestamp()) // window_seconds * window_seconds
    return start, datetime.fromtimestamp(start + window_seconds, now.tzinfo)


def window_rows(
    hits: Sequence[tuple[str, int]], now: datetime
) -> tuple[list[tuple[str, datetime]], list[tuple[str, datetime]]]:
    """The counter rows of ``hits`` in their current windows: (row key, window
    end) per hit in the caller's order, and the distinct rows in the one lock
    order every writer takes."""
    windows = [(f"rl:{key}:{_window(now, w)[0]}", _window(now, w)[1]) for key, w in hits]
    return windows, sorted(dict(windows).items())


def retry_after(
    counts: dict[str, int], windows: list[tuple[str, datetime]], now: datetime
) -> list[tuple[int, int]]:
    """(count, seconds left) per hit, as ``SharedStore.hit_many`` answers."""
    return [(counts[wkey], max(1, int((ends - now).total_seconds()))) for wkey, ends in windows]


def gated_hit_statement(n: int, where: Any) -> Any:
    """``_hit_statement`` for PostgreSQL as a part of a caller's statement: the
    same counter rows and conflict rule, each row counted only if ``where``
    holds (the filing's admission counts only a live resident's new key)."""
    table: Any = SharedState.__table__
    rows = union_all(
        *(
            select(
                bindparam(f"k{i}", type_=table.c.key.type),
                literal("", type_=String),
                literal(1, type_=Integer),
                bindparam(f"e{i}", type_=table.c.expires_at.type),
            ).where(where)
            for i in range(n)
        )
    )
    return (
        pg_insert(table)
        .from_select(["key", "value", "counter", "expires_at"], rows)
        .on_conflict_do_update(index_elements=[table.c.key], set_={"counter": table.c.counter + 1})
        .returning(table.c.key, table.c.counter)
    )


class DatabaseSharedStore:
    """Uses its own short transactions so counts survive the request's rollback.

    A hit is one upsert, outside any transaction on PostgreSQL. Expired
    windows are swept at most once a minute per process rather than on every
    hit: shared_state has no index on expiry, so a sweep reads the whole
    table, which under load was most of a filing's database time (bench/).
    """

    SWEEP_EVERY = timedelta(minutes=1)

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, engine: AsyncEngine | None = None
    ) -> None:
        self._sessionmaker = sessionmaker
        self._engine = engine  # owned (and disposed by close()) when given
        self._next_sweep: datetime | None = None
        self.autocommit = True

    def _sweep_due(self, now: datetime) -> bool:
        if self._next_sweep is not None and now < self._next_sweep:
            return False
        self._next_sweep = now + self.SWEEP_EVERY
        return True

    async def hit(self, key: str, *, window_seconds: int, now: datetime) -> tuple[int, int]:
        return (await self.hit_many([(key, window_seconds)], now=now))[0]

    async def hit_many(
        self, hits: Sequence[tuple[str, int]], *, now: datetime
    ) -> list[tuple[int, int]]:
        """One multi-row upsert for every window (a filing counts two: the
        resident's and the address's), so one round trip and one commit."""
        windows, ordered = window_rows(hits, now)  # one row per key (a repeat counts once)
        async with self._sessionmaker() as s:
            postgres = s.get_bind().dialect.name == "postgresql"
            if postgres and self._engine is not None and self.autocommit:
                # Its own pool's connection, and each statement stands alone:
                # no BEGIN and COMMIT round trips (not behind PgBouncer:
                # app/core/db.py ``autocommit_allowed``).
                await s.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            elif not postgres and self._engine is not None:
                # SQLite, its own file (SqliteFileSharedStore): the upsert is
                # one statement, atomic on its own, so no BEGIN and COMMIT
                # (two hops to aiosqlite's thread), and outside a transaction
                # the statement runs compiled once on the driver (core/driver.py);
                # in one, SQLAlchemy compiled this multi-row insert, which it
                # cannot cache, again for every filing.
                await s.connection(execution_options={SINGLE_STATEMENTS: True})
            params: dict[str, Any] = {}
            for i, (wkey, ends) in enumerate(ordered):
                params |= {f"k{i}": wkey, f"e{i}": ends}
            stmt = _hit_statement("postgresql" if postgres else "sqlite", len(ordered))
            counts = {str(k): int(c) for k, c in await driver.rows(s, stmt, params)}
            if self._sweep_due(now):
                await self._sweep(s, now)
            await s.commit()
        return retry_after(counts, windows, now)

    @staticmethod
    async def _sweep(s: AsyncSession, now: datetime) -> None:
        await s.execute(
            delete(SharedState).where(SharedState.expires_at < now - timedelta(hours=1))
        )

    async def sweep_if_due(self, now: datetime) -> None:
        """For hits counted by another statement (app/complaints/admission.py)."""
        if self._sweep_due(now):
            async with self._sessionmaker() as s:
                await self._sweep(s, now)
                await s.commit()

    def counts_in(self, session: AsyncSession) -> bool:
        """Whether a statement on ``session`` may count this store's hits: on
        PostgreSQL, in this store's own database (directly or through the same
        PgBouncer)."""
        mine: Any = getattr(self._sessionmaker, "kw", {}).get("bind")
        theirs: Any = session.get_bind()
        if mine is None or theirs.dialect.name != "postgresql":
            return False
        return database_key(mine) == database_key(theirs)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    async def get(self, key: str, *, now: datetime) -> str | None:
        async with self._sessionmaker() as s:
            row = (
                await s.execute(select(SharedState).where(SharedState.key == f"kv:{key}"))
            ).scalar_one_or_none()
        if row is None or row.expires_at <= now:
            return None
        return row.value

    async def set(self, key: str, value: str, *, ttl_seconds: int, now: datetime) -> None:
        expires = now + timedelta(seconds=ttl_seconds)
        async with self._sessionmaker() as s:
            updated = await s.execute(
                update(SharedState)
                .where(SharedState.key == f"kv:{key}")
                .values(value=value, expires_at=expires)
            )
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                try:
                    async with s.begin_nested():
                        s.add(
                            SharedState(key=f"kv:{key}", value=value, counter=0, expires_at=expires)
                        )
                except IntegrityError:
                    pass  # a concurrent writer stored a fresh value; either is fine
            await s.commit()


class SqliteFileSharedStore(DatabaseSharedStore):
    """The embedded default's stand-in for Redis: a small SQLite file of its own.

    It cannot share the main SQLite file: a request holds that file's write
    lock for its whole transaction, so a second connection writing a rate-limit
    count from inside the same request would wait on itself. Like Redis, it is
    a cache and counter store, not part of the relational schema, so it creates
    its one table itself.
    """

    def __init__(self, path: Path | None, settings: Settings) -> None:
        from app.core.db import create_engine, create_sessionmaker

        url = f"sqlite+aiosqlite:///{path}" if path else "sqlite+aiosqlite:///:memory:"
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings, url=url)
        super().__init__(create_sessionmaker(engine), engine=engine)
        self._sqlite_engine = engine
        self._ready = False
        self._lock = asyncio.Lock()

    async def _ensure(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if not self._ready:
                async with self._sqlite_engine.begin() as conn:
                    table = Base.metadata.tables[SharedState.__tablename__]
                    await conn.run_sync(table.create, checkfirst=True)
                self._ready = True

    async def hit_many(
        self, hits: Sequence[tuple[str, int]], *, now: datetime
    ) -> list[tuple[int, int]]:
        await self._ensure()
        return await super().hit_many(hits, now=now)

    async def get(self, key: str, *, now: datetime) -> str | None:
        await self._ensure()
        return await super().get(key, now=now)

    async def set(self, key: str, value: str, *, ttl_seconds: int, now: datetime) -> None:
        await self._ensure()
        await super().set(key, value, ttl_seconds=ttl_seconds, now=now)


def _shared_connect_args(settings: Settings) -> dict[str, Any]:
    """Rate-limit counts commit without waiting for the WAL flush: a crash can
    forget the last few hits (a limit briefly lenient), never data; each
    filing waited for three flushes before (two hits and its own). PgBouncer
    in transaction mode keeps no session settings (nor accepts them at
    connect), so behind it the hits commit as everything else does."""
    args = pgbouncer.connect_args(settings)
    if not settings.database_pgbouncer:
        args["server_settings"] = {"synchronous_commit": "off"}
    return args


def create_shared_store(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> SharedStore:
    if settings.redis_url:
        return RedisSharedStore(settings.redis_url)
    if settings.is_sqlite:
        db = settings.sqlite_path()
        return SqliteFileSharedStore(db.with_suffix(".shared.db") if db else None, settings)
    # A pool of its own: the request counting a hit already holds a connection
    # from the app's pool, so taking a second one there lets a burst of
    # requests hold every connection while each waits for another, until the
    # pool times out (30 s, then 500s; found by the bench at 32 connections).
    # This pool is only held for one short statement, so it always drains.
    engine = create_async_engine(
        settings.database_url,
        pool_size=SHARED_POOL_SIZE,
        max_overflow=SHARED_POOL_OVERFLOW,
        # As the app's pool (app/core/db.py): no ping round trip per hit.
        pool_pre_ping=False,
        pool_recycle=settings.database_pool_recycle_seconds or -1,
        connect_args=_shared_connect_args(settings),
    )
    store = DatabaseSharedStore(
        async_sessionmaker(engine, expire_on_commit=False, autoflush=False), engine=engine
    )
    store.autocommit = not settings.database_pgbouncer
    return store


class RedisSharedStore:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True)

    async def hit(self, key: str, *, window_seconds: int, now: datetime) -> tuple[int, int]:
        return (await self.hit_many([(key, window_seconds)], now=now))[0]

    async def hit_many(
        self, hits: Sequence[tuple[str, int]], *, now: datetime
    ) -> list[tuple[int, int]]:
        windows = [(f"ydt:rl:{key}:{_window(now, w)[0]}", w, _window(now, w)[1]) for key, w in hits]
        unique = {wkey: w for wkey, w, _ in windows}  # one count per key, as in the database
        async with self._redis.pipeline(transaction=True) as pipe:
            for wkey, w in unique.items():
                pipe.incr(wkey)
                pipe.expire(wkey, w + 5)
            replies = await pipe.execute()
        counts = {wkey: int(replies[2 * i]) for i, wkey in enumerate(unique)}
        return [
            (counts[wkey], max(1, int((ends - now).total_seconds()))) for wkey, _, ends in windows
        ]

    async def get(self, key: str, *, now: datetime) -> str | None:
        value = await self._redis.get(f"ydt:kv:{key}")
        return str(value) if value is not None else None

    async def set(self, key: str, value: str, *, ttl_seconds: int, now: datetime) -> None:
        await self._redis.set(f"ydt:kv:{key}", value, ex=max(1, ttl_seconds))

    async def close(self) -> None:
        await self._redis.aclose()
