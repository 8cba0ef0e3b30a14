"""Rate-limit windows and cached values are shared by every worker: in Redis
when configured, else in the database. Both implementations, for real."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core import driver
from app.core.shared import (
    DatabaseSharedStore,
    RedisSharedStore,
    SharedStore,
    SqliteFileSharedStore,
    _hit_statement,
    create_shared_store,
)
from tests import support
from tests.conftest import make_settings

NOW = datetime(2026, 11, 24, 3, 0, 30, tzinfo=UTC)


def redis_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.fixture(params=["database", "redis"])
async def store(request: pytest.FixtureRequest, engine: AsyncEngine) -> SharedStore:
    if request.param == "redis":
        if not redis_up():
            if support.IN_CI:
                pytest.fail("Redis is expected on 127.0.0.1:6379 under CI")
            pytest.skip("Redis not reachable")
        return RedisSharedStore("redis://127.0.0.1:6379/15")
    return DatabaseSharedStore(async_sessionmaker(engine, expire_on_commit=False))


async def test_hits_count_within_a_window_and_reset_after(store: SharedStore) -> None:
    key = f"t:{uuid.uuid4().hex}"
    counts = [(await store.hit(key, window_seconds=60, now=NOW))[0] for _ in range(3)]
    assert counts == [1, 2, 3]
    _, retry = await store.hit(key, window_seconds=60, now=NOW)
    assert 1 <= retry <= 60
    assert (await store.hit(key, window_seconds=60, now=NOW + timedelta(seconds=60)))[0] == 1


async def test_several_windows_are_counted_in_one_call(store: SharedStore) -> None:
    """A filing counts the resident's and the address's windows together:
    each keeps its own count and retry time, in the caller's order."""
    a, b = f"a:{uuid.uuid4().hex}", f"b:{uuid.uuid4().hex}"
    await store.hit(b, window_seconds=60, now=NOW)
    first = await store.hit_many([(b, 60), (a, 3600)], now=NOW)
    assert [c for c, _ in first] == [2, 1]
    assert first[0][1] <= 60 < first[1][1] <= 3600
    again = await store.hit_many([(a, 3600), (b, 60)], now=NOW)
    assert [c for c, _ in again] == [2, 3]
    # The same key twice in one call counts once: no half-applied double step.
    same = await store.hit_many([(a, 3600), (a, 3600)], now=NOW)
    assert [c for c, _ in same] == [3, 3]
    assert (await store.hit(a, window_seconds=3600, now=NOW))[0] >= 4


async def test_values_expire(store: SharedStore) -> None:
    key = f"v:{uuid.uuid4().hex}"
    assert await store.get(key, now=NOW) is None
    await store.set(key, "token-1", ttl_seconds=100, now=NOW)
    await store.set(key, "token-2", ttl_seconds=100, now=NOW)
    assert await store.get(key, now=NOW) == "token-2"
    if isinstance(store, DatabaseSharedStore):  # Redis expires by its own clock
        assert await store.get(key, now=NOW + timedelta(seconds=101)) is None


async def test_two_workers_share_one_database_count(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    a, b = DatabaseSharedStore(maker), DatabaseSharedStore(maker)
    key = f"w:{uuid.uuid4().hex}"
    assert (await a.hit(key, window_seconds=60, now=NOW))[0] == 1
    assert (await b.hit(key, window_seconds=60, now=NOW))[0] == 2
    async with AsyncSession(engine) as s:  # nothing left in a transaction
        assert s.in_transaction() is False


async def test_the_app_store_counts_on_a_pool_of_its_own(engine: AsyncEngine) -> None:
    """What create_app builds: on PostgreSQL its own pool (so a request holding
    a connection never waits on its own pool for a hit) and statements outside
    a transaction; on SQLite a file of its own."""
    url = engine.url.render_as_string(hide_password=False)
    store = create_shared_store(
        make_settings(database_url=url), async_sessionmaker(engine, expire_on_commit=False)
    )
    key = f"own:{uuid.uuid4().hex}"
    try:
        counts = [(await store.hit(key, window_seconds=60, now=NOW))[0] for _ in range(3)]
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            await close()
    assert counts == [1, 2, 3]


async def test_the_embedded_store_counts_every_hit_one_statement_each(tmp_path: Path) -> None:
    """The embedded default's store (a SQLite file of its own) sends no BEGIN
    or COMMIT: each upsert commits on its own. Two processes' stores on one
    file, hitting together, still count every hit exactly once, and the
    upsert ran on the driver, compiled once, not through SQLAlchemy's
    execution (which cannot cache a multi-row insert and compiled it anew
    for every filing)."""
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ydt.db'}")
    a = SqliteFileSharedStore(tmp_path / "ydt.shared.db", settings)
    b = SqliteFileSharedStore(tmp_path / "ydt.shared.db", settings)
    key = f"one:{uuid.uuid4().hex}"
    try:
        found = await asyncio.gather(
            *(s.hit_many([(key, 60), (f"{key}:ip", 60)], now=NOW) for s in (a, b) * 20)
        )
    finally:
        await a.close()
        await b.close()
    assert sorted(c for (c, _), _ in found) == list(range(1, 41))
    assert sorted(c for _, (c, _) in found) == list(range(1, 41))
    stmt = _hit_statement("sqlite", 2)
    assert driver._COMPILED[(id(stmt), "sqlite")][0] is stmt
