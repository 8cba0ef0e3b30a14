"""Prebuilt statements on the asyncpg connection (app/core/driver.py).

The rolled-back tests run every request inside one transaction, where the
driver path stands aside; these use the live app (``committing_engine``),
whose filing and read sessions autocommit as in production, and compare what
the driver path writes and answers with what SQLAlchemy's execution gives
for the same statements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.complaints import repository
from app.core import driver
from app.core.errors import unavailable_error
from app.models import SharedState
from tests import mediafiles
from tests.complaints.test_filing import login, payload, upload
from tests.complaints.test_filing_sql import rows, strip_ids
from tests.workflow.live import VILLAGE, http, live

__all__ = ["http", "live"]

pytestmark = pytest.mark.usefixtures("seeded")
# Writes take the driver path on PostgreSQL only (SQLite writers hold a
# transaction); reads on both.
postgresql_only = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)


@pytest.fixture
def pg(committing_engine: AsyncEngine) -> AsyncEngine:
    return committing_engine


def used(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL run on the driver connection, recorded (the path really ran)."""
    ran: list[str] = []
    real = driver.compile_for

    def recording(stmt: Any, dialect: Any) -> driver.Compiled:
        made = real(stmt, dialect)
        ran.append(made.sql)
        return made

    monkeypatch.setattr(driver, "compile_for", recording)
    return ran


def without_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    async def none(conn: AsyncConnection) -> None:
        return None

    monkeypatch.setattr(driver, "_driver", none)


@postgresql_only
async def test_a_filing_on_the_driver_writes_what_sqlalchemy_writes(
    pg: AsyncEngine, live: FastAPI, http: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await login(http, "driver-filer", scene=VILLAGE)

    async def file(key: str, **kw: Any) -> dict[str, Any]:
        photo = await upload(http, h, mediafiles.jpeg_with_gps(), "image")
        resp = await http.post(
            "/api/v1/complaints",
            headers=h | {"Idempotency-Key": key},
            json=payload(region_code=VILLAGE, media_ids=[photo], **kw),
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    for kw in ({}, {"anonymous": True, "contact_name": None, "contact_phone": None}):
        with monkeypatch.context() as m:
            ran = used(m)
            via_driver = await file(f"drv-{len(kw)}", **kw)
            assert any("INSERT INTO complaints" in sql for sql in ran)
            assert any("INSERT INTO idempotency_records" in sql for sql in ran)
            assert any("INSERT INTO shared_state" in sql for sql in ran)
        with monkeypatch.context() as m:
            without_driver(m)
            via_sa = await file(f"sa-{len(kw)}", **kw)
        async with pg.connect() as conn:
            a, b = await rows(conn, via_driver["id"]), await rows(conn, via_sa["id"])
        assert unloaded(a["complaint"]) == unloaded(b["complaint"])
        assert unloaded(strip_ids(a["events"])) == unloaded(strip_ids(b["events"]))
        assert a["notes"] == b["notes"] and len(a["notes"]) == 1
        assert a["media"] == b["media"] and len(a["media"]) == 1
        assert set(via_driver) == set(via_sa)
        # A retry replays the same bytes through the driver path.
        again = await http.post(
            "/api/v1/complaints",
            headers=h | {"Idempotency-Key": f"drv-{len(kw)}"},
            json=payload(region_code=VILLAGE, media_ids=[], **kw),
        )
        assert again.status_code == 409  # same key, other body (no photo)


def unloaded(value: Any) -> Any:
    """``value`` without what follows from the cadres' open cases at the
    moment of filing (the cadre chosen, the trace's line naming them): the
    two filings compared are routed one after the other, and the first one's
    case counts for the second, whichever way it was written."""
    if isinstance(value, dict):
        return {k: None if k == "cadre_id" else unloaded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unloaded(v) for v in value]
    if isinstance(value, str) and value.startswith("承办干部"):
        return "承办干部"
    return value


async def test_the_resident_read_on_the_driver_answers_the_same_bytes(
    pg: AsyncEngine, live: FastAPI, http: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either database: SQLite's readers send no BEGIN, so they take the path too."""
    h = await login(http, "driver-reader", scene=VILLAGE)
    photo = await upload(http, h, mediafiles.jpeg_with_gps(), "image")
    filed = await http.post(
        "/api/v1/complaints", json=payload(region_code=VILLAGE, media_ids=[photo]), headers=h
    )
    assert filed.status_code == 201, filed.text
    url = f"/api/v1/complaints/{filed.json()['id']}"
    with monkeypatch.context() as m:
        ran = used(m)
        fast = await http.get(url, headers=h)
        assert any("FROM complaints" in sql for sql in ran)
    with monkeypatch.context() as m:
        without_driver(m)
        slow = await http.get(url, headers=h)
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    body = fast.json()
    assert body["status"] == "submitted" and body["contact_phone"] == "138****5678"
    assert [e["kind"] for e in body["timeline"]] == ["filed"] and len(body["media"]) == 1
    # Another resident, or a dead session: not found / 401, on the driver too.
    other = await login(http, "driver-other", scene=VILLAGE)
    assert (await http.get(url, headers=other)).status_code == 404
    assert (await http.post("/api/v1/auth/logout", headers=h)).status_code in (200, 204)
    assert (await http.get(url, headers=h)).status_code == 401


@postgresql_only
async def test_values_come_back_as_sqlalchemy_gives_them(
    pg: AsyncEngine, live: FastAPI, http: AsyncClient
) -> None:
    stmt = repository._detail_stmt("postgresql", "tracked")
    h = await login(http, "driver-values", scene=VILLAGE)
    filed = await http.post("/api/v1/complaints", json=payload(region_code=VILLAGE), headers=h)
    assert filed.status_code == 201, filed.text
    number = filed.json()["tracking_no"]
    async with AsyncSession(pg) as s:  # a transaction: SQLAlchemy's execution
        through_sa = await driver.first(s, stmt, {"tracking_no": number})
    async with AsyncSession(pg.execution_options(isolation_level="AUTOCOMMIT")) as s:
        on_driver = await driver.first(s, stmt, {"tracking_no": number})
    assert on_driver is not None and through_sa is not None
    assert on_driver == through_sa
    assert [type(v) for v in on_driver] == [type(v) for v in through_sa]


@postgresql_only
async def test_a_transaction_keeps_its_statements(pg: AsyncEngine) -> None:
    """Inside a transaction the same statement goes through SQLAlchemy and is
    rolled back with the rest (the adapter owns the transaction)."""
    stmt = select(SharedState.key).where(SharedState.key == "driver-tx")
    insert = text("INSERT INTO shared_state (key, value, counter, expires_at) "
                  "VALUES ('driver-tx', '', 1, now())")  # fmt: skip
    async with AsyncSession(pg) as s:
        await s.execute(insert)
        assert await driver.scalar(s, stmt, {}) == "driver-tx"
        await s.rollback()
    async with AsyncSession(pg.execution_options(isolation_level="AUTOCOMMIT")) as s:
        assert await driver.scalar(s, stmt, {}) is None


@postgresql_only
async def test_errors_are_translated_as_sqlalchemy_would(pg: AsyncEngine) -> None:
    from app.idempotency.service import _begin_statement

    values: dict[str, Any] = {
        "scope": "driver",
        "owner": "o",
        "key": "k",
        "request_hash": "x" * 300,  # longer than the column: a data error, not a 503
        "status_code": 0,
        "created_at": None,
    }
    autocommit = pg.execution_options(isolation_level="AUTOCOMMIT")
    async with AsyncSession(autocommit) as s:
        with pytest.raises(sa_exc.DBAPIError) as caught:
            await driver.scalar(s, _begin_statement("postgresql"), values)
    async with AsyncSession(pg) as s:
        with pytest.raises(sa_exc.DBAPIError) as reference:
            await s.execute(_begin_statement("postgresql"), values)
    assert type(caught.value) is type(reference.value)
    assert type(caught.value.orig) is type(reference.value.orig)
    assert "too long" in str(caught.value)
    # Values never reach the message (logs): either way, parameters are hidden.
    assert "x" * 300 not in str(caught.value) and "x" * 300 not in str(reference.value)
    assert unavailable_error(caught.value) is None
    # A unique violation is an IntegrityError either way.
    taken = {**values, "request_hash": "x", "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    async with AsyncSession(autocommit) as s:
        first_id = await driver.scalar(s, _begin_statement("postgresql"), taken)
        assert first_id is not None
        duplicate = text(
            "INSERT INTO idempotency_records (id, scope, owner, key, request_hash, "
            "status_code, created_at) VALUES (:i, 'driver', 'o2', 'k2', 'x', 0, now())"
        )
        with pytest.raises(sa_exc.IntegrityError):
            await driver.scalar(s, duplicate, {"i": first_id})
    # A connection PostgreSQL dropped: invalidated, and a 503, never a 500.
    async with AsyncSession(autocommit) as s:
        conn = await s.connection()
        pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        async with pg.connect() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            await killer.commit()
        with pytest.raises(sa_exc.DBAPIError) as dropped:
            await driver.scalar(s, select(SharedState.key).limit(1), {})
    assert dropped.value.connection_invalidated
    assert unavailable_error(dropped.value) is not None
    async with AsyncSession(autocommit) as s:  # the pool hands out a working one
        assert await driver.scalar(s, select(text("1")), {}) == 1


@postgresql_only
def test_expanding_parameters_cannot_be_prebuilt(pg: AsyncEngine) -> None:
    from sqlalchemy import bindparam

    stmt = select(SharedState.key).where(SharedState.key.in_(bindparam("keys", expanding=True)))
    with pytest.raises(ValueError, match="ANY"):
        driver.compile_for(stmt, pg.dialect)


async def test_hostile_ids_on_the_driver_path_are_refused_cleanly(
    pg: AsyncEngine, live: FastAPI, http: AsyncClient
) -> None:
    """What reaches the driver unparsed by SQLAlchemy: a NUL, other control
    characters, non-UTF-8-able text, a 32-character id that is not hex. Each
    is a 4xx (not found or invalid), never a 500, on either database."""
    h = await login(http, "driver-hostile", scene=VILLAGE)
    for cid in ("\x00" * 32, "a" * 31 + "\x00", "\u202e" * 32, "😀" * 32, "%00" * 10 + "ab"):
        resp = await http.get(f"/api/v1/complaints/{quote(cid, safe='')}", headers=h)
        assert resp.status_code in (404, 422), (repr(cid), resp.status_code, resp.text)
        assert "error" in resp.json() or "detail" in resp.json()
    for number, code in (
        ("DZ20261203-\x00\x00", "ABCD"),
        ("DZ2026", "AB\x00CD"),
        ("😀" * 8, "😀😀"),
    ):
        url = f"/api/v1/track/{quote(number, safe='')}"
        resp = await http.get(url, params={"query_code": code})
        assert resp.status_code in (404, 422, 429), (repr(number), resp.status_code, resp.text)
