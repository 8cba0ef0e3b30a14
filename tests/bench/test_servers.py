"""The bench's accounting of PostgreSQL's CPU by client process.

The worker's share of PostgreSQL's CPU is told from the requests' by the
backends its sockets lead to; a wrong match would move CPU between the two
columns of the report without anyone noticing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from bench.servers import Database, backends_of, local_ports
from tests import support


def _database() -> Database:
    url = f"postgresql+asyncpg://{support.PG_USER}@{support.PG_HOST}:{support.PG_PORT}/postgres"
    return Database("postgres", url)


CHILD = """
import asyncio, sys
import asyncpg

async def main():
    conn = await asyncpg.connect(sys.argv[1])
    print(await conn.fetchval("select pg_backend_pid()"), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_process_is_matched_to_the_backends_it_is_connected_to() -> None:
    if not await support.postgres_available():
        if support.IN_CI:
            pytest.fail("PostgreSQL is mandatory under CI but is not reachable on 127.0.0.1:5432")
        pytest.skip("PostgreSQL not reachable (mandatory under CI=true)")
    db = _database()
    conns = [await asyncpg.connect(db.dsn) for _ in range(2)]
    other = subprocess.Popen(
        [sys.executable, "-c", CHILD, db.dsn], stdout=subprocess.PIPE, text=True
    )
    idle = subprocess.Popen(["sleep", "30"])
    try:
        assert other.stdout is not None
        theirs = int(await asyncio.to_thread(other.stdout.readline))
        mine = {int(await c.fetchval("select pg_backend_pid()")) for c in conns}
        found = set(await backends_of(db, [os.getpid()]))
        # This process's backends, and not the other process's.
        assert mine <= found
        assert theirs not in found
        assert await backends_of(db, [other.pid]) == [theirs]
        # A process holding no connection to the database has no backends.
        assert await backends_of(db, [idle.pid]) == []
        # A process that no longer exists is left out, not an error.
        assert local_ports([2**22 + 1]) == set()
    finally:
        for proc in (other, idle):
            proc.kill()
            proc.wait()
        await asyncio.gather(*(c.close() for c in conns))
