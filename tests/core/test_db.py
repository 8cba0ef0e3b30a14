"""Interpreter tuning for the embedded default, and the read session (app/core/db.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select, text, update
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.complaints import filing_sql
from app.core.config import Settings
from app.core.db import (
    SQLITE_SWITCH_INTERVAL,
    ReadSessionWrite,
    create_engine,
    create_read_sessionmaker,
    read_session,
    tune_interpreter,
)
from app.models import Citizen, Notification
from tests.conftest import make_settings


async def test_sqlite_shortens_the_switch_interval_and_postgresql_leaves_it(
    tmp_path: Path,
) -> None:
    before = sys.getswitchinterval()
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    pg_url = "postgresql+asyncpg://postgres@127.0.0.1:5432/never_connected"
    sqlite = create_engine(make_settings(database_url=sqlite_url), url=sqlite_url)
    pg = create_engine(make_settings(database_url=pg_url), url=pg_url)
    try:
        sys.setswitchinterval(0.005)
        tune_interpreter(pg)  # asyncpg runs in the event loop: nothing to tune
        assert sys.getswitchinterval() == 0.005
        tune_interpreter(sqlite)  # aiosqlite hops to its thread on every statement
        assert abs(sys.getswitchinterval() - SQLITE_SWITCH_INTERVAL) < 1e-9
    finally:
        sys.setswitchinterval(before)
        await sqlite.dispose()
        await pg.dispose()


class _Base(DeclarativeBase):
    pass


# A table of the read-session tests' own.
class _T(_Base):
    __tablename__ = "t"
    id: Mapped[int] = mapped_column(primary_key=True)
    v: Mapped[str]


async def _one_row(tmp_path: Path) -> tuple[AsyncEngine, Settings]:
    """A SQLite file with table ``t`` (``_T``) holding one row, (1, 'a')."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'one-row.db'}"
    settings = make_settings(database_url=url)
    engine = create_engine(settings, url=url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        await conn.execute(text("INSERT INTO t VALUES (1, 'a')"))
    return engine, settings


async def test_a_read_session_commits_nothing_and_refuses_changes_left_in_it(
    tmp_path: Path,
) -> None:
    """read_session hands its connection back without a COMMIT; an ORM change
    left in it is a bug in the service that made it, so it fails loudly
    instead of being rolled back in silence."""
    engine, settings = await _one_row(tmp_path)
    request = SimpleNamespace(
        app=SimpleNamespace(
            state=SimpleNamespace(read_sessionmaker=create_read_sessionmaker(engine, settings))
        )
    )
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    event.listen(engine.sync_engine, "commit", lambda *a: sent.append("COMMIT"))
    try:
        async with read_session(request) as session:  # type: ignore[arg-type]
            assert (await session.execute(text("SELECT v FROM t"))).scalar_one() == "a"
        assert sent == ["SELECT v FROM t"]
        with pytest.raises(RuntimeError, match="read session holds changes"):
            async with read_session(request) as session:  # type: ignore[arg-type]
                session.add(_T(id=2, v="b"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_read_session_refuses_every_write_before_it_reaches_the_database(
    tmp_path: Path,
) -> None:
    """A route that takes a read session and then writes (an audit line, a
    view count) is a bug that would otherwise autocommit on PostgreSQL or
    take the write lock on SQLite: every ORM write is refused before any
    statement is sent, and nothing is written. A session of the same
    sessionmaker that is not a read session's (the filing's) still writes."""
    engine, settings = await _one_row(tmp_path)
    maker = create_read_sessionmaker(engine, settings)
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(read_sessionmaker=maker)))
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    writes = [
        insert(_T).values(id=2, v="b"),
        update(_T).where(_T.id == 1).values(v="z"),
        delete(_T).where(_T.id == 1),
    ]
    try:
        for statement in writes:
            with pytest.raises(ReadSessionWrite):
                async with read_session(request) as session:  # type: ignore[arg-type]
                    await session.execute(statement)
        for change in ("add", "dirty", "delete"):
            with pytest.raises(ReadSessionWrite):
                async with read_session(request) as session:  # type: ignore[arg-type]
                    if change == "add":
                        session.add(_T(id=3, v="c"))
                    else:
                        row = await session.get(_T, 1)
                        assert row is not None
                        if change == "dirty":
                            row.v = "y"
                        else:
                            await session.delete(row)
                    await session.flush()
        assert not [s for s in sent if not s.lstrip().upper().startswith("SELECT")]
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, v FROM t"))).all()
        assert [tuple(r) for r in rows] == [(1, "a")]
        async with maker() as writer:  # not a read session's: writes as before
            await writer.execute(insert(_T).values(id=4, v="d"))
            await writer.commit()
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
    finally:
        await engine.dispose()


async def test_sqlite_check_in_ends_an_open_transaction_and_skips_the_idle_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's reset is ours on SQLite (one aiosqlite hop saved per request):
    a connection handed back inside a transaction is still rolled back, its
    write lock released and its change gone; one handed back idle is not."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    settings = make_settings(database_url=url)
    engine = create_engine(settings, url=url)
    other = create_engine(settings, url=url)
    # A spy on the driver adapter's rollback (each call is a hop to aiosqlite's
    # thread); the database beneath is the real one.
    rollbacks: list[bool] = []
    adapter = AsyncAdapt_aiosqlite_connection
    real_rollback = adapter.rollback

    def counted(self: Any) -> None:
        rollbacks.append(True)
        real_rollback(self)

    monkeypatch.setattr(adapter, "rollback", counted)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        async with engine.connect() as conn:
            native = (await conn.get_raw_connection()).driver_connection
            assert native is not None
            # Behind SQLAlchemy's back, so only the pool's reset can end it.
            await native.execute("BEGIN IMMEDIATE")
            await native.execute("INSERT INTO t VALUES (1)")
            assert native.in_transaction
        assert not native.in_transaction and rollbacks  # handed back mid-transaction: ended
        async with other.begin() as conn:  # the write lock is free again
            await conn.execute(text("INSERT INTO t VALUES (2)"))
            assert (await conn.execute(text("SELECT id FROM t"))).scalars().all() == [2]

        rollbacks.clear()
        async with engine.connect() as conn:  # the same pooled connection, idle
            assert (await conn.get_raw_connection()).driver_connection is native
        assert not native.in_transaction and not rollbacks
    finally:
        await engine.dispose()
        await other.dispose()


async def test_a_built_row_inserts_and_updates_as_a_constructed_one(session: AsyncSession) -> None:
    """Base.built fills the instance's dict without the constructor's attribute
    events: the flush writes the same row, Python-side defaults included, and a
    later assignment is an UPDATE like any other."""
    now = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
    values: dict[str, Any] = {
        "recipient_kind": "citizen",
        "recipient_id": 7,
        "kind": "filed",
        "title": "诉求已登记",
        "body": "正文",
        "data": {"tracking_no": "DZ1"},
        "channel": "wechat_subscribe",
        "next_attempt_at": now,
        "created_at": now,
    }
    made, built = Notification(**values), Notification.built(**values)
    assert filing_sql.row_values(built) == filing_sql.row_values(made)
    session.add_all([made, built])
    await session.flush()
    assert made.id is not None and built.id is not None and made.id != built.id
    columns = [c for c in Notification.__table__.columns if c.name != "id"]
    rows = (
        await session.execute(
            select(*columns)
            .where(Notification.id.in_([made.id, built.id]))
            .order_by(Notification.id)
        )
    ).all()
    assert rows[0] == rows[1]
    assert rows[1].status == "pending" and rows[1].attempts == 0  # the model's defaults
    built.status = "sent"
    await session.flush()
    status = await session.scalar(select(Notification.status).where(Notification.id == built.id))
    assert status == "sent"


def test_built_refuses_what_is_not_a_column() -> None:
    with pytest.raises(TypeError, match=r"not column attributes: \['nope'\]"):
        Notification.built(kind="filed", nope=1)
    with pytest.raises(TypeError, match="openid"):
        Citizen.built(openid="o")  # a property, not a column: the dict would shadow nothing
