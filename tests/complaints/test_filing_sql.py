"""The one-statement filing (PostgreSQL), and the prebuilt INSERTs of each
row on SQLite, write exactly the rows the ORM path writes: every column of
every table, so a model change that the statement missed fails here rather
than in production."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import Integer, String, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.complaints import filing, filing_sql
from app.complaints.events import GENESIS, compute_hash
from app.core import driver
from app.models import (
    Complaint,
    ComplaintEvent,
    ContentCheck,
    IdempotencyRecord,
    Media,
    Notification,
)
from app.models.enums import Channel, ComplaintStatus, MediaStatus
from app.stats import projector
from tests import mediafiles
from tests.complaints.test_filing import login, payload, upload
from tests.conftest import DEFAULT_NOW
from tests.stats.test_projector import session_on

pytestmark = pytest.mark.usefixtures("seeded")

# Differ between any two cases by construction (ids, keyed per case, numbers).
PER_CASE = {
    "id",
    "complaint_id",
    "tracking_no",
    "identity_commitment",
    "identity_sealed",
    "actor_commitment",
    "hash",
    "prev_hash",
    "attached_to",
    "storage_key",
    "sha256",
    "size",
    "upload_key",
    "key",
    "owner",
    "response",
    "etag",
    "query_code_hash",  # of a random query code
}


def columns(row: Any) -> dict[str, Any]:
    return {c.name: getattr(row, c.key) for c in row.__table__.columns if c.name not in PER_CASE}


async def rows(connection: AsyncConnection, cid: str) -> dict[str, Any]:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        case = (await s.execute(select(Complaint).where(Complaint.id == cid))).scalar_one()
        events = (
            (
                await s.execute(
                    select(ComplaintEvent)
                    .where(ComplaintEvent.complaint_id == cid)
                    .order_by(ComplaintEvent.seq)
                )
            )
            .scalars()
            .all()
        )
        prev = GENESIS
        for e in events:  # both paths write a valid chain
            assert e.prev_hash == prev and e.hash == compute_hash(prev, e)
            prev = e.hash
        notes = (
            (await s.execute(select(Notification).where(Notification.complaint_id == cid)))
            .scalars()
            .all()
        )
        media = (
            (await s.execute(select(Media).where(Media.attached_to == f"complaint:{cid}")))
            .scalars()
            .all()
        )
        return {
            "complaint": columns(case),
            "events": [
                columns(e)
                | {"data": {k: v for k, v in e.data.items() if k not in ("identity_commitment",)}}
                for e in events
            ],
            "notes": [
                columns(n)
                | {
                    "body": n.body.replace(case.tracking_no, "N"),
                    # the template slots name the number too: it must be this case's
                    "data": {
                        k: ("N" if v == case.tracking_no else v) for k, v in (n.data or {}).items()
                    },
                }
                for n in notes
            ],
            "media": [columns(m) for m in media],
        }


def strip_ids(data: Any) -> Any:
    """Media ids and the snapshot's per-case fields inside event data."""
    if isinstance(data, dict):
        return {k: strip_ids(v) for k, v in data.items() if k not in ("media_ids", "id")}
    if isinstance(data, list):
        return [strip_ids(v) for v in data]
    return data


async def test_the_statement_writes_what_the_orm_writes(
    engine: AsyncEngine,
    client: AsyncClient,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = await login(client, "sqlpath")

    async def file(key: str, **kw: Any) -> dict[str, Any]:
        photo = await upload(client, h, mediafiles.jpeg_with_gps(), "image")
        resp = await client.post(
            "/api/v1/complaints",
            headers=h | {"Idempotency-Key": key},
            json=payload(media_ids=[photo], **kw),
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    for kw in ({}, {"anonymous": True, "contact_name": None, "contact_phone": None}):
        via_sql = await file(f"sql-{len(kw)}", **kw)
        with monkeypatch.context() as m:
            m.setattr(filing_sql, "supported", lambda session: False)
            m.setattr(filing, "SQLITE_ROWS_ON_DRIVER", False)
            via_orm = await file(f"orm-{len(kw)}", **kw)
        async with session_on(connection) as s:  # the projector catches up on both first
            await projector.drain(s, now=DEFAULT_NOW)
            await s.commit()
        a, b = await rows(connection, via_sql["id"]), await rows(connection, via_orm["id"])
        assert a["complaint"] == b["complaint"]
        assert strip_ids(a["events"]) == strip_ids(b["events"])
        assert a["notes"] == b["notes"] and len(a["notes"]) == 1
        assert a["media"] == b["media"] and len(a["media"]) == 1
        # Numbers are consecutive, and both answers have the same shape.
        seq = [int(x["tracking_no"].rsplit("-", 1)[1]) for x in (via_sql, via_orm)]
        assert seq[1] == seq[0] + 1
        assert set(via_sql) == set(via_orm)


async def test_a_retry_replays_the_number_drawn_inside_the_statement(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, "sqlreplay")
    body = payload()
    first = await client.post(
        "/api/v1/complaints", headers=h | {"Idempotency-Key": "k-1"}, json=body
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        "/api/v1/complaints", headers=h | {"Idempotency-Key": "k-1"}, json=body
    )
    assert again.status_code == 201 and again.content == first.content, (
        first.content,
        again.content,
    )
    other = await client.post(
        "/api/v1/complaints", headers=h | {"Idempotency-Key": "k-1"}, json=payload(content="x" * 30)
    )
    assert other.status_code == 409
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        n = len(
            (await s.execute(select(Complaint.id).where(Complaint.id == first.json()["id"])))
            .scalars()
            .all()
        )
        kept = (await s.execute(select(IdempotencyRecord))).scalars().all()
    assert n == 1 and any(r.status_code == 201 for r in kept)


async def test_the_counter_is_taken_after_the_rows_that_need_no_number(
    engine: AsyncEngine, client: AsyncClient, connection: AsyncConnection
) -> None:
    """The day's counter row is locked to the commit, so the statement writes
    the events, the idempotency answer and the media first (filing_sql's
    docstring). Each table's writes are logged in order by a trigger that
    lives and dies with this test's transaction."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite files through the ORM only")
    watched = (
        "complaint_events",
        "idempotency_records",
        "media",
        "tracking_counters",
        "complaints",
        "notifications",
    )
    await connection.exec_driver_sql(
        "CREATE TEMP TABLE write_order (n serial, tbl text) ON COMMIT DROP"
    )
    await connection.exec_driver_sql(
        "CREATE FUNCTION pg_temp.log_write() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO write_order (tbl) VALUES (TG_TABLE_NAME); RETURN NEW; END $$"
    )
    for table in watched:
        await connection.exec_driver_sql(
            f"CREATE TRIGGER log_write_{table} BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.log_write()"
        )
    h = await login(client, "sqlorder")
    photo = await upload(client, h, mediafiles.jpeg_with_gps(), "image")
    await connection.exec_driver_sql("TRUNCATE write_order")
    resp = await client.post(
        "/api/v1/complaints",
        headers=h | {"Idempotency-Key": "order-1"},
        json=payload(media_ids=[photo]),
    )
    assert resp.status_code == 201, resp.text
    order = [
        r[0]
        for r in (await connection.exec_driver_sql("SELECT tbl FROM write_order ORDER BY n")).all()
    ]
    first = {t: order.index(t) for t in watched if t in order}
    assert set(first) == set(watched), order
    counter = first["tracking_counters"]
    # The admission's key record comes before the filing statement; its answer
    # (an update of that record) is the filing's, before the counter.
    last_idem = max(i for i, t in enumerate(order) if t == "idempotency_records")
    assert first["complaint_events"] < counter and first["media"] < counter, order
    assert last_idem < counter, order
    assert counter < first["complaints"] < first["notifications"], order


async def test_a_fault_after_the_early_rows_leaves_nothing_and_no_gap(
    engine: AsyncEngine, client: AsyncClient, connection: AsyncConnection
) -> None:
    """The events and media are written before the complaint now: a fault at
    the complaint (here a trigger that raises) must take them back with it,
    leave the day's counter where it was, free the key, and answer 500 with
    no detail; the next filing then takes the next number."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite files through the ORM only")
    h = await login(client, "sqlfault")
    photo = await upload(client, h, mediafiles.jpeg_with_gps(), "image")
    ok = await client.post("/api/v1/complaints", headers=h, json=payload())
    assert ok.status_code == 201, ok.text
    before = int(ok.json()["tracking_no"].rsplit("-", 1)[1])

    async def count(sql: str) -> int:
        return int((await connection.exec_driver_sql(sql)).scalar_one())

    events = await count("SELECT count(*) FROM complaint_events")
    cases = await count("SELECT count(*) FROM complaints")
    await connection.exec_driver_sql(
        "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$"
    )
    await connection.exec_driver_sql(
        "CREATE TRIGGER refuse_case BEFORE INSERT ON complaints "
        "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"
    )
    body = payload(media_ids=[photo])
    failed = await client.post(
        "/api/v1/complaints", headers=h | {"Idempotency-Key": "fault-1"}, json=body
    )
    assert failed.status_code == 500, failed.text
    assert failed.json()["error"] == "internal_error"
    assert "fire" not in failed.text
    assert await count("SELECT count(*) FROM complaint_events") == events
    assert await count("SELECT count(*) FROM complaints") == cases
    assert (
        await count(f"SELECT count(*) FROM media WHERE id = '{photo}' AND attached_to IS NULL") == 1
    )
    assert await count("SELECT count(*) FROM idempotency_records WHERE key = 'fault-1'") == 0

    await connection.exec_driver_sql("DROP TRIGGER refuse_case ON complaints")
    again = await client.post(
        "/api/v1/complaints", headers=h | {"Idempotency-Key": "fault-1"}, json=body
    )
    assert again.status_code == 201, again.text
    assert int(again.json()["tracking_no"].rsplit("-", 1)[1]) == before + 1


class _ProbeBase(DeclarativeBase):
    pass


class _Probe(_ProbeBase):
    """A throwaway model (never created) with one default of each kind."""

    __tablename__ = "row_values_probe"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String, default="plain")
    made: Mapped[str] = mapped_column(String, default=lambda: "called")
    stamped: Mapped[str | None] = mapped_column(String, default=func.now())
    note: Mapped[str | None] = mapped_column(String)


def test_row_values_apply_python_defaults_only() -> None:
    """Scalar and callable defaults are filled as the ORM would on flush; a SQL
    expression default and an unset serial key are left to the database."""
    assert filing_sql.row_values(_Probe(note="n")) == {
        "kind": "plain",
        "made": "called",
        "stamped": None,
        "note": "n",
    }
    assert filing_sql.row_values(_Probe(id=7, kind="set")) == {
        "id": 7,
        "kind": "set",
        "made": "called",
        "stamped": None,
        "note": None,
    }


def _every_shape() -> list[dict[str, Any]]:
    now = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
    case = Complaint(
        id="c" * 32,
        content="村里低保名单有问题",
        channel=Channel.online,
        status=ComplaintStatus.submitted,
        anonymous=True,
        received_at=now,
        due_at=now,
        routing_trace={"steps": ["事项归口 → 镇纪委"], "n": 1.5, 3: None},
    )
    events = [
        ComplaintEvent(seq=1, kind="filed", public=True, data={"state": {"状态": "已提交"}}),
        ComplaintEvent(seq=2, kind="routed", public=False, created_at=now, data={}),
    ]
    notice = Notification(body=f"编号 {filing_sql.NUMBER}", data={"k": "v"})
    check = ContentCheck(id="x" * 32, target="complaint", kind="text", part="text", state="new")
    photo = Media(
        id="m" * 32,
        status=MediaStatus.attached,
        attached_to="complaint:" + "c" * 32,
        attached_at=now,
        owner_citizen_id=None,
    )
    answer = filing_sql.Idempotent(record_id=9, status_code=201, response={"编号": "N"})
    return [
        {"complaint": case, "events": events, "day": now.date(), "prefix": "JD", **kw}
        for kw in (
            {},
            {"notification": notice},
            {"notification": notice, "extra": [check], "media": [photo], "idempotent": answer},
        )
    ]


@pytest.mark.parametrize("shape", range(3))
def test_values_built_for_the_driver_are_what_the_mapping_gives(shape: int) -> None:
    """The filing's parameters are put in the driver's order straight from the
    objects (``_Rows.arguments``); the paths that go through
    ``session.execute`` take them by name (``_Rows.mapping``). Both must give
    every parameter, and the same value for each, processors applied."""
    stmt, built = filing_sql.prepare(**_every_shape()[shape])
    compiled = driver.compile_for(stmt, postgresql.asyncpg.dialect())  # type: ignore[no-untyped-call]
    mapping = built.mapping()
    names = [name for name, _, _ in compiled.binds]
    binds = stmt.compile(dialect=postgresql.asyncpg.dialect()).binds  # type: ignore[no-untyped-call]
    given = {name for name, bind in binds.items() if bind.required}  # not literals
    assert given and given <= set(mapping), given - set(mapping)
    direct = built.arguments(compiled)
    assert direct == driver._arguments(compiled, mapping)
    assert driver._arguments(compiled, driver.Prebound(built.arguments, built.mapping)) == direct
    by_name = dict(zip(names, direct, strict=True))
    # JSON goes out as text that decodes to what the objects hold.
    trace = {"steps": ["事项归口 → 镇纪委"], "n": 1.5, "3": None}
    assert json.loads(by_name["c_routing_trace"]) == trace
    assert json.loads(by_name["e0_data"]) == {"state": {"状态": "已提交"}}
    assert by_name["c_content"] == "村里低保名单有问题"
