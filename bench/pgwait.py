"""What the database backends are doing during a load round.

py-spy sees the app's CPU only; a request that waits for a row lock held by
another filing shows up nowhere there. Sampling pg_stat_activity every 20 ms
tells how often this database's busy backends were running a statement, idle
inside a transaction (waiting for the app), or waiting for a lock, and on
which statement, which is the evidence for contention.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import asyncpg

QUERY = """
select state, coalesce(wait_event_type, '') as wtype, coalesce(wait_event, '') as wevent,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 200) as query
from pg_stat_activity
where datname = $1 and pid <> pg_backend_pid() and state <> 'idle'
"""


def _statement(query: str) -> str:
    """A short label: the verb and the table it touches."""
    q = query.strip()
    m = re.match(
        r"(?is)^(select|insert into|update|delete from|savepoint|release|begin|commit)\b\s*"
        r"(?:.*?\bfrom\s+)?(\w+)?",
        q,
    )
    if not m:
        return q[:40]
    verb = m[1].lower()
    if verb in ("savepoint", "release", "begin", "commit"):
        return verb
    return f"{verb} {m[2] or ''}".strip()


class Sampler:
    def __init__(self, dsn: str, datname: str, interval: float = 0.02) -> None:
        self.dsn, self.datname, self.interval = dsn, datname, interval
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                for r in await conn.fetch(QUERY, self.datname):
                    if r["state"] == "active":
                        what = f"{r['wtype']}:{r['wevent']}" if r["wtype"] else "running"
                        self.counts[f"{what} on {_statement(r['query'])}"] += 1
                    else:  # idle in transaction: the backend waits for the app
                        self.counts[f"{r['state']} after {_statement(r['query'])}"] += 1
                self.samples += 1
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._task is not None:
            await self._task
        return {"samples": self.samples, "counts": dict(self.counts)}


def merge(parts: list[dict[str, Any]], top: int = 12) -> dict[str, Any]:
    """Busy backends per sample, and the share of backend-samples per state."""
    counts: Counter[str] = Counter()
    samples = 0
    for p in parts:
        counts.update(p["counts"])
        samples += p["samples"]
    total = sum(counts.values())
    return {
        "busy_backends_avg": round(total / samples, 2) if samples else 0,
        "share_pct": {k: round(100 * v / total, 1) for k, v in counts.most_common(top) if total},
    }
