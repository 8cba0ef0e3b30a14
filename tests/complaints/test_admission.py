"""A filing's admission (session, Idempotency-Key, rate limits) answers the
same whether it runs as one statement (PostgreSQL, counters in the same
database) or step by step (SQLite, Redis, PgBouncer), and writes nothing it
should not: no key record or counter for a dead session, no count for a retry,
no record left behind by a 429."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.complaints import admission
from app.core.shared import DatabaseSharedStore
from app.models import AuthSession, Complaint, IdempotencyRecord, SharedState
from tests.complaints.test_filing import login, payload

pytestmark = pytest.mark.usefixtures("seeded")

PATHS = ["one statement", "step by step"]


@pytest.fixture(params=PATHS)
async def path(
    request: pytest.FixtureRequest, app: FastAPI, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[str]:
    """The admission's two ways. The app fixture's store has no database of
    its own (step by step); a store whose sessionmaker is bound to the test's
    connection (so everything still rolls back) lets the filing count its hits
    in one statement."""
    if request.param == "one statement":
        if engine.dialect.name != "postgresql":
            pytest.skip("one statement on PostgreSQL only; SQLite admits step by step")
        store = DatabaseSharedStore(
            async_sessionmaker(
                bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
        )
        async with AsyncSession(bind=connection) as s:
            assert store.counts_in(s)  # so the filings below take the one statement
        app.state.shared_store = store
    yield str(request.param)


async def _count(connection: AsyncConnection, stmt: Any) -> int:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        return int((await s.execute(stmt)).scalar_one())


async def counters(connection: AsyncConnection) -> dict[str, int]:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        rows = (
            await s.execute(
                select(SharedState.key, SharedState.counter).where(
                    SharedState.key.like("rl:file:%")
                )
            )
        ).all()
    return {str(k): int(c) for k, c in rows}


async def records(connection: AsyncConnection) -> int:
    return await _count(connection, select(func.count()).select_from(IdempotencyRecord))


async def cases(connection: AsyncConnection) -> int:
    return await _count(connection, select(func.count()).select_from(Complaint))


async def test_which_way_a_filing_is_admitted(
    app: FastAPI, engine: AsyncEngine, connection: AsyncConnection
) -> None:
    same = DatabaseSharedStore(async_sessionmaker(engine))
    async with AsyncSession(bind=connection) as s:
        postgres = engine.dialect.name == "postgresql"
        assert same.counts_in(s) is postgres
        # The app fixture's store has no database of its own to compare.
        assert app.state.shared_store.counts_in(s) is False
        same.autocommit = False  # behind PgBouncer: inside the filing's transaction
        assert same.counts_in(s) is postgres
        if postgres:  # another database (an engine connects only when used)
            elsewhere = create_async_engine(engine.url.set(database="elsewhere"))
            try:
                assert DatabaseSharedStore(async_sessionmaker(elsewhere)).counts_in(s) is False
            finally:
                await elsewhere.dispose()


async def test_each_filing_counts_once_against_both_limits(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, f"count-{path}")
    before = await counters(connection)
    for i in range(3):
        resp = await client.post(
            "/api/v1/complaints", headers={**h, "Idempotency-Key": f"c-{i}"}, json=payload()
        )
        assert resp.status_code == 201, resp.text
    grown = {
        k: v - before.get(k, 0)
        for k, v in (await counters(connection)).items()
        if v != before.get(k, 0)
    }
    # The resident's window and the address's, three each.
    assert sorted(grown.values()) == [3, 3]
    assert any(k.startswith("rl:file:citizen:") for k in grown)
    assert any(k.startswith("rl:file:ip:") for k in grown)


async def test_a_retry_replays_without_counting(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    h = {**(await login(client, f"retry-{path}")), "Idempotency-Key": "same"}
    first = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert first.status_code == 201
    counted, kept, filed = (
        await counters(connection),
        await records(connection),
        await cases(connection),
    )
    again = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert again.status_code == 201 and again.content == first.content
    other = await client.post(
        "/api/v1/complaints", headers=h, json=payload(content="另一件完全不同的事情，需要另外反映")
    )
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
    assert await counters(connection) == counted
    assert (await records(connection), await cases(connection)) == (kept, filed)


async def test_a_first_attempt_still_running_is_a_409(
    path: str, app: FastAPI, client: AsyncClient, connection: AsyncConnection
) -> None:
    h = {**(await login(client, f"inflight-{path}")), "Idempotency-Key": "running"}
    first = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert first.status_code == 201
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await s.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "running")
            .values(response=None, status_code=0)
        )
        await s.commit()
    counted = await counters(connection)
    resp = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert resp.status_code == 409 and resp.json()["error"] == "idempotency_in_flight"
    assert await counters(connection) == counted


async def test_the_eleventh_filing_is_refused_and_frees_its_key(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, f"limit-{path}")
    for i in range(10):
        ok = await client.post(
            "/api/v1/complaints", headers={**h, "Idempotency-Key": f"l-{i}"}, json=payload()
        )
        assert ok.status_code == 201, ok.text
    kept, filed = await records(connection), await cases(connection)
    refused = await client.post(
        "/api/v1/complaints", headers={**h, "Idempotency-Key": "l-10"}, json=payload()
    )
    assert refused.status_code == 429 and refused.json()["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    # Nothing filed, and the key's record is gone: a retry later runs afresh.
    assert (await records(connection), await cases(connection)) == (kept, filed)
    unkeyed = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert unkeyed.status_code == 429


async def test_a_dead_session_writes_nothing(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, f"dead-{path}")
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await s.execute(update(AuthSession).values(revoked_at=func.now()))
        await s.commit()
    counted, kept = await counters(connection), await records(connection)
    for extra in ({"Idempotency-Key": "dead"}, {}, {"Idempotency-Key": "x" * 129}):
        resp = await client.post("/api/v1/complaints", headers={**h, **extra}, json=payload())
        assert resp.status_code == 401, (extra, resp.text)
    assert await counters(connection) == counted
    assert await records(connection) == kept


async def test_a_malformed_key_is_a_400_for_a_live_session(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, f"badkey-{path}")
    counted = await counters(connection)
    for bad in ("", " ", "x" * 129, "tab\there"):
        resp = await client.post(
            "/api/v1/complaints", headers={**h, "Idempotency-Key": bad}, json=payload()
        )
        assert resp.status_code == 400, (bad, resp.text)
    assert await counters(connection) == counted


def test_the_statement_is_built_once_per_shape() -> None:
    assert admission._statement(True, 2) is admission._statement(True, 2)
    assert admission._statement(False, 2) is not admission._statement(True, 2)


async def test_another_residents_key_is_not_theirs(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    """Keys are per resident: the same key and body from another resident
    files that resident's own case, never a replay of the first one's."""
    key = {"Idempotency-Key": "shared-key"}
    first = await client.post(
        "/api/v1/complaints", headers={**(await login(client, f"ka-{path}")), **key}, json=payload()
    )
    other = await client.post(
        "/api/v1/complaints", headers={**(await login(client, f"kb-{path}")), **key}, json=payload()
    )
    assert first.status_code == other.status_code == 201
    assert first.json()["id"] != other.json()["id"]
    assert first.json()["tracking_no"] != other.json()["tracking_no"]
