"""Engine, sessions and the declarative base.

The request owns the transaction (``get_session``): services flush, never
commit. SQLite and PostgreSQL behave the same here: SQLite gets foreign keys,
WAL, a busy timeout and real SAVEPOINTs (pysqlite's own transaction handling
is switched off so SQLAlchemy emits BEGIN itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi import Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from app.core import pgbouncer
from app.core.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type; without this a value read back is naive and
    comparing it with the clock raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin, so
        # SAVEPOINT and per-test rollback work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: a transaction that reads then writes must not lose to a
        # concurrent writer with SQLITE_BUSY (a 500); it waits its turn instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    url = url or settings.database_url
    kwargs: dict[str, Any] = {"echo": settings.database_echo}
    if url.startswith("sqlite"):
        path = settings.sqlite_path() if url == settings.database_url else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # One connection per checkout: SQLite file locks, not a pool, decide.
        kwargs["poolclass"] = NullPool
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.update(pool_size=settings.database_pool_size, max_overflow=10, pool_pre_ping=True)
    kwargs.update(pgbouncer.engine_options(settings, url))  # empty unless behind PgBouncer
    return create_async_engine(url, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: commit on success, roll back on error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# Expression indexes: SQLite's reflection cannot see them, so autogenerate
# would propose them forever, and a batch-mode rebuild of their table drops
# them (a migration that rebuilds complaints must restore them, as 0009 does).
# Migration 0008 writes them by hand; tests/test_migrations.py checks they exist.
EXPRESSION_INDEXES = frozenset({"ix_complaints_queue_open", "ix_complaints_queue_done"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's filter for what autogenerate compares."""
    return not (type_ == "index" and name in EXPRESSION_INDEXES)
