"""Interpreter tuning for the embedded default (app/core/db.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from app.core.db import SQLITE_SWITCH_INTERVAL, create_engine, tune_interpreter
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
