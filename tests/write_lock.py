"""Whether SQLite's write lock is free, asked the way another process would.

The embedded default runs `ydt serve` and `ydt worker` as separate processes
over one database file: whatever one holds a writer's transaction open for,
the other's writers wait on. The tests that show nothing slow runs inside
one (``test_write_lock.py`` in tests/media, tests/ledger, tests/moderation;
tests/notifications/test_send_lock.py) probe with these while the slow part
runs. Its ``http`` fixture replaces the live app's in those modules.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient


def database_free(live: FastAPI) -> bool:
    """Another connection takes the database's write lock within half a
    second (far longer than any short write of the app's or the worker's)."""
    conn = sqlite3.connect(str(live.state.engine.url.database), timeout=0.5, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def locks_free(live: FastAPI) -> tuple[bool, bool]:
    """(the app process's writer lock is free, the database's write lock is
    free): a request's writer session takes the first for its whole length
    (``db.get_session``)."""
    return not live.state.sqlite_writers.locked(), database_free(live)


@pytest.fixture
async def http(live: FastAPI) -> AsyncIterator[AsyncClient]:
    """The live app's client (``tests.workflow.live.http``) from an address of
    its own: the live database keeps every test's logins for the run, and the
    per-address login limit counts them all, so tests sharing one address
    would push later tests past it."""
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    transport = ASGITransport(app=live, client=(address, 1))
    async with AsyncClient(transport=transport, base_url="http://live") as client:
        yield client
