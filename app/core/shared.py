"""State several workers and machines must agree on: rate-limit windows and
cached values (the WeChat access token). Redis when ``YDT_REDIS_URL`` is set,
else a database table; never one process's memory.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import Base
from app.models import SharedState


class SharedStore(Protocol):
    async def hit(self, key: str, *, window_seconds: int, now: datetime) -> tuple[int, int]:
        """Count one hit in the current fixed window; return (count, seconds left)."""

    async def get(self, key: str, *, now: datetime) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl_seconds: int, now: datetime) -> None: ...


def _window(now: datetime, window_seconds: int) -> tuple[int, datetime]:
    start = int(now.timestamp()) // window_seconds * window_seconds
    return start, datetime.fromtimestamp(start + window_seconds, now.tzinfo)


class DatabaseSharedStore:
    """Uses its own short transactions so counts survive the request's rollback."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def hit(self, key: str, *, window_seconds: int, now: datetime) -> tuple[int, int]:
        start, ends = _window(now, window_seconds)
        wkey = f"rl:{key}:{start}"
        async with self._sessionmaker() as s:
            result = await s.execute(
                update(SharedState)
                .where(SharedState.key == wkey)
                .values(counter=SharedState.counter + 1)
                .returning(SharedState.counter)
            )
            count = result.scalar_one_or_none()
            if count is None:
                try:
                    async with s.begin_nested():
                        await s.execute(
                            insert(SharedState).values(
                                key=wkey, value="", counter=1, expires_at=ends
                            )
                        )
                    count = 1
                except IntegrityError:  # another worker created the window first
                    result = await s.execute(
                        update(SharedState)
                        .where(SharedState.key == wkey)
                        .values(counter=SharedState.counter + 1)
                        .returning(SharedState.counter)
                    )
                    count = result.scalar_one()
            await s.execute(
                delete(SharedState).where(SharedState.expires_at < now - timedelta(hours=1))
            )
            await s.commit()
        return int(count), max(1, int((ends - now).total_seconds()))

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
        self._engine = create_engine(settings, url=url)
        super().__init__(create_sessionmaker(self._engine))
        self._ready = False
        self._lock = asyncio.Lock()

    async def _ensure(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if not self._ready:
                async with self._engine.begin() as conn:
                    table = Base.metadata.tables[SharedState.__tablename__]
                    await conn.run_sync(table.create, checkfirst=True)
                self._ready = True

    async def hit(self, key: str, *, window_seconds: int, now: datetime) -> tuple[int, int]:
        await self._ensure()
        return await super().hit(key, window_seconds=window_seconds, now=now)

    async def get(self, key: str, *, now: datetime) -> str | None:
        await self._ensure()
        return await super().get(key, now=now)

    async def set(self, key: str, value: str, *, ttl_seconds: int, now: datetime) -> None:
        await self._ensure()
        await super().set(key, value, ttl_seconds=ttl_seconds, now=now)

    async def close(self) -> None:
        await self._engine.dispose()


def create_shared_store(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> SharedStore:
    if settings.redis_url:
        return RedisSharedStore(settings.redis_url)
    if settings.is_sqlite:
        db = settings.sqlite_path()
        return SqliteFileSharedStore(db.with_suffix(".shared.db") if db else None, settings)
    return DatabaseSharedStore(sessionmaker)


class RedisSharedStore:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True)

    async def hit(self, key: str, *, window_seconds: int, now: datetime) -> tuple[int, int]:
        start, ends = _window(now, window_seconds)
        wkey = f"ydt:rl:{key}:{start}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(wkey)
            pipe.expire(wkey, window_seconds + 5)
            count, _ = await pipe.execute()
        return int(count), max(1, int((ends - now).total_seconds()))

    async def get(self, key: str, *, now: datetime) -> str | None:
        value = await self._redis.get(f"ydt:kv:{key}")
        return str(value) if value is not None else None

    async def set(self, key: str, value: str, *, ttl_seconds: int, now: datetime) -> None:
        await self._redis.set(f"ydt:kv:{key}", value, ex=max(1, ttl_seconds))

    async def close(self) -> None:
        await self._redis.aclose()
