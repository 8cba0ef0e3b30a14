"""State several workers and machines must agree on: rate-limit windows and
cached values (the WeChat access token). Redis when ``YDT_REDIS_URL`` is set,
else a database table; never one process's memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
