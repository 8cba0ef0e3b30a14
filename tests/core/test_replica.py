"""The replica rule's pieces (app/core/replica.py), PgBouncer's engine options
and the named worker locks; the whole topology is tests/deploy/."""

from __future__ import annotations

import math
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.core import locks, pgbouncer
from app.core.clock import FixedClock
from app.core.replica import Replica, judge, parse_lsn, reader_key
from app.core.security import TokenService
from app.core.shared import DatabaseSharedStore
from tests.conftest import DEFAULT_NOW, make_settings


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0/0", 0),
        ("0/3000060", 0x3000060),
        ("16/B374D848", (0x16 << 32) + 0xB374D848),
    ],
)
def test_wal_positions_order_like_numbers(text: str, value: int) -> None:
    assert parse_lsn(text) == value


@pytest.mark.parametrize("bad", [None, "", "3000060", "x/1", "1/zz", "/"])
def test_a_malformed_wal_position_is_none(bad: str | None) -> None:
    assert parse_lsn(bad) is None


def _row(**kw: object) -> SimpleNamespace:
    base = {"standby": True, "replay": "0/10", "caught_up": True, "receiver": "streaming"}
    return SimpleNamespace(**{**base, "since": None, **kw})


def test_a_streaming_caught_up_standby_has_no_lag_however_old_its_last_write() -> None:
    state = judge(_row(since=3600.0))
    assert state.usable and state.lag_seconds == 0 and state.replay_lsn == 0x10


def test_a_standby_behind_what_it_received_lags_by_its_last_replayed_write() -> None:
    assert judge(_row(caught_up=False, since=7.5)).lag_seconds == 7.5
    # Not streaming (the primary unreachable): the age of its last write counts.
    assert judge(_row(receiver=None, since=2.0)).lag_seconds == 2.0
    assert judge(_row(caught_up=False, since=None)).lag_seconds == math.inf


def test_a_server_that_is_not_a_standby_is_never_used() -> None:
    assert not judge(_row(standby=False)).usable
    assert not judge(None).usable


def test_reads_are_keyed_by_the_staff_member_of_the_token() -> None:
    tokens = TokenService("s" * 32, access_minutes=30, refresh_days=30)
    clock = FixedClock(DEFAULT_NOW)
    sid = "a" * 32
    staff, _ = tokens.issue(subject="7", kind="staff", now=clock.now(), session_id=sid)
    citizen, _ = tokens.issue(subject="9", kind="citizen", now=clock.now(), session_id=sid)

    def scope(auth: str | None) -> dict[str, object]:
        headers = [(b"authorization", auth.encode())] if auth else []
        return {"type": "http", "headers": headers}

    assert reader_key(scope(f"Bearer {staff}"), tokens, clock) == "staff:7"
    assert reader_key(scope(f"bearer {staff}"), tokens, clock) == "staff:7"
    assert reader_key(scope(f"Bearer {citizen}"), tokens, clock) is None
    assert reader_key(scope("Bearer not-a-token"), tokens, clock) is None
    assert reader_key(scope("Basic dXNlcjpwdw=="), tokens, clock) is None
    assert reader_key(scope(None), tokens, clock) is None
    expired = FixedClock(DEFAULT_NOW + timedelta(days=1))
    assert reader_key(scope(f"Bearer {staff}"), tokens, expired) is None


def test_pgbouncer_mode_turns_statement_caches_off_with_unique_names() -> None:
    on = make_settings(database_pgbouncer=True)
    args = pgbouncer.engine_options(on, "postgresql+asyncpg://u@h/db")["connect_args"]
    assert args["statement_cache_size"] == 0 and args["prepared_statement_cache_size"] == 0
    names = {args["prepared_statement_name_func"]() for _ in range(100)}
    assert len(names) == 100 and all(n.startswith("__asyncpg_") for n in names)
    assert pgbouncer.engine_options(on, "sqlite+aiosqlite:///x.db") == {}
    assert pgbouncer.engine_options(make_settings(), "postgresql+asyncpg://u@h/db") == {}


def test_lock_keys_are_stable_signed_64_bit_numbers() -> None:
    key = locks.key_of("red-card-sweep")
    assert key == locks.key_of("red-card-sweep") != locks.key_of("rating-reminders")
    assert -(2**63) <= key < 2**63


async def test_a_named_lock_is_held_by_one_transaction_at_a_time(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as first:
        assert await locks.try_exclusive(first, "test-lock")
        if engine.dialect.name == "postgresql":
            async with maker() as second:
                assert not await locks.try_exclusive(second, "test-lock")
                await second.rollback()
        await first.commit()  # the transaction ends: so does the lock
    async with maker() as again:
        assert await locks.try_exclusive(again, "test-lock")
        await again.rollback()


async def test_a_primary_given_as_replica_is_not_used(engine: AsyncEngine) -> None:
    """The rule asks the server itself: a primary is no standby, so the reads
    stay where they were (and a writer's position changes nothing)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a replica is a PostgreSQL standby")
    url = engine.url.render_as_string(hide_password=False)
    settings = make_settings(database_url=url, database_replica_url=url)
    clock = FixedClock(DEFAULT_NOW)
    shared = DatabaseSharedStore(async_sessionmaker(engine, expire_on_commit=False))
    replica = Replica(settings, engine, shared, clock)
    try:
        assert await replica.open(None) is None
        await replica.record_write("staff:1")
        recorded = await shared.get("replica-lsn:staff:1", now=clock.now())
        assert parse_lsn(recorded) is not None
        assert await replica.open("staff:1") is None
    finally:
        await replica.close()


async def test_an_unreachable_replica_sends_reads_to_the_primary_without_error(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a replica is a PostgreSQL standby")
    url = engine.url.render_as_string(hide_password=False)
    dead = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    settings = make_settings(database_url=url, database_replica_url=dead)
    shared = DatabaseSharedStore(async_sessionmaker(engine, expire_on_commit=False))
    replica = Replica(settings, engine, shared, FixedClock(DEFAULT_NOW))
    try:
        assert await replica.open(None) is None
        assert await replica.open(None) is None  # left alone for a while: no new attempt
    finally:
        await replica.close()
