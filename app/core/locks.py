"""Named locks for work that one process at a time must do, whatever the
number of workers (``ydt worker`` may run on several machines).

PostgreSQL: a transaction-scoped advisory lock, tried without waiting. It
ends with the transaction, so a worker killed mid-sweep frees it at once,
and it survives PgBouncer's transaction mode (a session-level lock would
stay on whichever server connection took it). A worker that does not get
the lock skips that piece of work this tick: the holder is doing it.

SQLite: the embedded default's transactions begin IMMEDIATE, so writers are
serialised by the file lock already; the lock is always granted.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def key_of(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (the same in every process)."""
    return int.from_bytes(hashlib.sha256(f"ydt:{name}".encode()).digest()[:8], "big", signed=True)


async def try_exclusive(session: AsyncSession, name: str) -> bool:
    """Take ``name`` for the rest of ``session``'s transaction, or say it is taken."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    got = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key_of(name)})
    return bool(got.scalar_one())
