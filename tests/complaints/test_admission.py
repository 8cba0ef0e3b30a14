"""A filing's admission (session, Idempotency-Key, rate limits) answers the
same whether it runs as one statement (PostgreSQL, counters in the same
database) or step by step (SQLite, Redis, PgBouncer), and writes nothing it
should not: no key record or counter for a dead session, no count for a retry,
no record left behind by a 429."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.complaints import admission, filing, identity
from app.complaints.schemas import ComplaintCreate
from app.core.shared import DatabaseSharedStore
from app.idempotency import service as idempotency
from app.models import (
    AuthSession,
    Complaint,
    IdempotencyRecord,
    Media,
    Notification,
    SharedState,
)
from app.notifications import delivery
from tests import mediafiles
from tests.complaints.test_filing import VILLAGE, login, payload, upload

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


async def _citizen(client: AsyncClient, name: str) -> tuple[dict[str, str], int]:
    body = (
        await client.post(
            "/api/v1/auth/wechat-login", json={"code": f"ok-{name}", "scene": VILLAGE}
        )
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}, int(body["citizen"]["id"])


@contextmanager
def statements(connection: AsyncConnection) -> Iterator[list[str]]:
    """The SQL sent on the test's connection meanwhile."""
    seen: list[str] = []

    def record(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", record)


async def test_a_filing_is_one_statement_protected_or_not(
    path: str, client: AsyncClient, connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the case's statement the admission writes the key's record, the
    hits and the case at once, for a plain case and a protected one alike
    (anonymous, or an accusation): the filing needs nothing of the resident
    but the id the token carries. (SQLite's rows go through the ORM here, so
    that SQLAlchemy's events see them: on the driver they are its own
    INSERTs, compared with the ORM's in tests/complaints/test_filing_sql.py.)"""
    monkeypatch.setattr(filing, "SQLITE_ROWS_ON_DRIVER", False)
    h = await login(client, f"one-{path}")
    hidden = payload(anonymous=True, contact_name=None, contact_phone=None)
    for key, body in (("p", payload()), ("a", hidden)):
        with statements(connection) as seen:
            resp = await client.post(
                "/api/v1/complaints", headers={**h, "Idempotency-Key": key}, json=body
            )
        assert resp.status_code == 201, resp.text
        admitting = [s for s in seen if "idempotency_records" in s and "shared_state" in s]
        case = [s for s in seen if "INSERT INTO complaints" in s]
        assert len(case) == 1
        if path == "one statement":
            assert admitting == case
        else:
            assert "shared_state" not in case[0]


async def test_a_protected_case_seals_the_resident_and_its_notice_finds_them(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    """The sealed identity names the resident by id (not by openid, which
    follows from the resident); delivery finds the openid from there."""
    h, citizen_id = await _citizen(client, f"sealed-{path}")
    resp = await client.post(
        "/api/v1/complaints",
        headers=h,
        json=payload(anonymous=True, contact_name=None, contact_phone=None),
    )
    assert resp.status_code == 201, resp.text
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        row = await s.get(Complaint, resp.json()["id"])
        assert row is not None and row.citizen_id is None and row.identity_sealed
        assert identity.of(row).citizen_id == citizen_id
        assert identity.of(row).openid is None
        notice = (
            await s.execute(select(Notification).where(Notification.complaint_id == row.id))
        ).scalar_one()
        assert notice.recipient_id is None  # no plain link from the notice to the resident
        assert await delivery._openid(s, notice, row) == f"openid-sealed-{path}"
        plain = await client.post("/api/v1/complaints", headers=h, json=payload())
        assert plain.status_code == 201, plain.text
        case = await s.get(Complaint, plain.json()["id"])
        # A plain case keeps the resident's id in the clear and seals nothing.
        assert case is not None and case.citizen_id == citizen_id and case.identity_sealed is None


async def stage_answer(
    connection: AsyncConnection,
    citizen_id: int,
    key: str,
    body: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    """The key's record as a first attempt leaves it, answered 201 with
    ``answer``, written by hand (for the moments a test cannot time)."""
    values = idempotency.record_values(
        scope=admission.SCOPE,
        owner=f"citizen:{citizen_id}",
        key=key,
        fingerprint=idempotency.request_hash(ComplaintCreate(**body).model_dump(mode="json")),
        now=datetime.now(UTC),
    )
    sealed = idempotency.sealed(IdempotencyRecord.built(**values), answer)
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        s.add(IdempotencyRecord(**values | {"status_code": 201}, response=sealed))
        await s.commit()


async def test_an_answer_with_no_case_behind_it_is_still_running(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    """Over its limit, a filing's statement has written the key's record
    already answered, and drops it again right after: a retry in between
    finds an answer whose case does not exist, and is told to wait."""
    h, citizen_id = await _citizen(client, f"gap-{path}")
    body = payload()
    answer = {"id": "f" * 32, "tracking_no": None, "status": "submitted"}
    await stage_answer(connection, citizen_id, "gap", body, answer)
    counted, filed = await counters(connection), await cases(connection)
    resp = await client.post(
        "/api/v1/complaints", headers={**h, "Idempotency-Key": "gap"}, json=body
    )
    assert resp.status_code == 409 and resp.json()["error"] == "idempotency_in_flight"
    assert (await counters(connection), await cases(connection)) == (counted, filed)


async def test_a_filing_that_cannot_be_built_answers_after_its_admission(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    """Built before its admission, a filing with a bad region or item still
    answers as the admission first: 401 for a dead session; for a live one the
    400 or 404, with no key record or case left."""
    h = await login(client, f"bad-{path}")
    township = payload(region_code=VILLAGE[:9] + "000")
    unknown = payload(item_code="9999")
    kept, filed = await records(connection), await cases(connection)
    for i, (body, status) in enumerate(((township, 400), (unknown, 404))):
        resp = await client.post(
            "/api/v1/complaints", headers={**h, "Idempotency-Key": f"b-{i}"}, json=body
        )
        assert resp.status_code == status, resp.text
    assert (await records(connection), await cases(connection)) == (kept, filed)
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await s.execute(update(AuthSession).values(revoked_at=func.now()))
        await s.commit()
    for body in (township, unknown):
        resp = await client.post("/api/v1/complaints", headers=h, json=body)
        assert resp.status_code == 401, resp.text


def test_the_admission_inside_is_built_once_per_shape() -> None:
    assert admission.parts((True, 2)) is admission.parts((True, 2))
    assert admission.parts((False, 2)) is not admission.parts((True, 2))


async def attached(connection: AsyncConnection, media_id: str) -> str | None:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        return (await s.execute(select(Media.attached_to).where(Media.id == media_id))).scalar_one()


async def test_media_go_with_the_admitted_case_only(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    """The uploads a filing claims are attached by its statement only if it
    is admitted: a replay and a 429 leave them as they were."""
    h = await login(client, f"media-{path}")
    first_media = await upload(client, h, mediafiles.png(), "image")
    body = payload(media_ids=[first_media])
    first = await client.post(
        "/api/v1/complaints", headers={**h, "Idempotency-Key": "m"}, json=body
    )
    assert first.status_code == 201, first.text
    case = f"complaint:{first.json()['id']}"
    assert await attached(connection, first_media) == case
    again = await client.post(
        "/api/v1/complaints", headers={**h, "Idempotency-Key": "m"}, json=body
    )
    assert again.status_code == 201 and again.content == first.content
    assert await attached(connection, first_media) == case
    for i in range(9):  # the hour's other nine
        ok = await client.post(
            "/api/v1/complaints", headers={**h, "Idempotency-Key": f"m-{i}"}, json=payload()
        )
        assert ok.status_code == 201, ok.text
    later = await upload(client, h, mediafiles.png(), "image")
    refused = await client.post(
        "/api/v1/complaints",
        headers={**h, "Idempotency-Key": "m-over"},
        json=payload(media_ids=[later]),
    )
    assert refused.status_code == 429, refused.text
    assert await attached(connection, later) is None


async def test_a_retry_beside_its_first_attempt_attaches_nothing(
    path: str, client: AsyncClient, connection: AsyncConnection
) -> None:
    """A duplicate sent while its first attempt runs finds its uploads still
    free, builds its case, and then finds the key taken: it replays the first
    answer and leaves the uploads to the first attempt. (Staged: the first
    attempt's answered record is written by hand, its uploads not yet taken.)"""
    h, citizen_id = await _citizen(client, f"beside-{path}")
    first = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert first.status_code == 201, first.text
    media_id = await upload(client, h, mediafiles.png(), "image")
    body = payload(media_ids=[media_id])
    await stage_answer(connection, citizen_id, "beside", body, first.json() | {"tracking_no": None})
    filed = await cases(connection)
    again = await client.post(
        "/api/v1/complaints", headers={**h, "Idempotency-Key": "beside"}, json=body
    )
    assert again.status_code == 201 and again.json() == first.json()
    assert await cases(connection) == filed
    assert await attached(connection, media_id) is None
