"""Migrations are the only schema source: they must match the models exactly
and run both ways on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import app.models  # noqa: F401
from app.core.db import EXPRESSION_INDEXES, Base, create_engine, include_object
from tests import support
from tests.conftest import make_settings


def _diff(connection: Connection) -> list[object]:
    ctx = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": True, "include_object": include_object},
    )
    return list(compare_metadata(ctx, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _expression_indexes(connection: Connection) -> set[str]:
    """Autogenerate skips these, so check by name that the migration made them."""
    if connection.dialect.name == "sqlite":
        sql = "select name from sqlite_master where type = 'index'"
    else:
        sql = "select indexname from pg_indexes where tablename = 'complaints'"
    return {r[0] for r in connection.exec_driver_sql(sql)} & EXPRESSION_INDEXES


async def _check_round_trip(url: str) -> None:
    await asyncio.to_thread(support.alembic_upgrade, url)
    engine = create_engine(make_settings(database_url=url), url=url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            assert diff == [], f"models and migrations differ: {diff}"
            assert await conn.run_sync(_expression_indexes) == EXPRESSION_INDEXES
            tables = await conn.run_sync(_tables)
            assert set(Base.metadata.tables) <= tables
        await asyncio.to_thread(support.alembic_downgrade, url, "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        await asyncio.to_thread(support.alembic_upgrade, url)
    finally:
        await engine.dispose()


async def test_sqlite_upgrade_matches_models_and_downgrades(tmp_path: Path) -> None:
    await _check_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_postgres_upgrade_matches_models_and_downgrades() -> None:
    if not await support.postgres_available():
        if support.IN_CI:
            pytest.fail("PostgreSQL is mandatory under CI")
        pytest.skip("PostgreSQL not reachable")
    name, url = await support.create_pg_database()
    try:
        await _check_round_trip(url)
    finally:
        await support.drop_pg_database(name)


def test_every_constraint_is_named_by_the_convention() -> None:
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name, f"{table.name} has an unnamed constraint {constraint!r}"
