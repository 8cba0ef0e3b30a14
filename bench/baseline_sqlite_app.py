"""The embedded limit: a bare FastAPI app on one aiosqlite connection.

The SQLite twin of ``baseline_app``: one INSERT into ``bench_baseline`` for
filing, one SELECT by key for tracking, on a copy of the complaints table
(same columns, same indexes) in the same database file the embedded app
uses. One connection per worker, WAL and ``synchronous=NORMAL`` as the app
sets them; each INSERT commits on its own. Nothing else.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import aiosqlite
from fastapi import FastAPI, HTTPException

from app.core.db import SQLITE_SWITCH_INTERVAL
from bench.baseline_app import Filing

TABLE = "bench_baseline"
COLUMNS = (
    "id, tracking_no, channel, citizen_id, item_id, item_code, region_code, township_code, "
    "county_code, content, anonymous, contact_name, contact_phone, accusation, status, version, "
    "unit_id, department_code, department_region_code, tier, time_limit_days, received_at, "
    "accept_due_at, due_at, routing_trace, created_at, updated_at, yellow_at, orange_at, "
    "priority, priority_flags, reopen_count"
)
INSERT = (
    f"insert into {TABLE} ({COLUMNS}) values (?, ?, 'online', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, "
    "'submitted', 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '[]', 0)"
)


def _at(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def create_app() -> FastAPI:
    path = os.environ["BENCH_SQLITE_PATH"]
    # The same interpreter tuning the app takes on SQLite (app.core.db), so
    # the comparison stays one of code, not of settings.
    sys.setswitchinterval(SQLITE_SWITCH_INTERVAL)
    state: dict[str, Any] = {}
    numbers = count(1)
    prefix = f"BS{os.getpid() % 100_000:05d}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000"):
            await db.execute(f"PRAGMA {pragma}")
        async with db.execute(
            f"select citizen_id, item_id, unit_id, department_code, department_region_code, "
            f"tier, time_limit_days from {TABLE} where citizen_id is not null limit 1"
        ) as cur:
            state["template"] = await cur.fetchone()
        state["db"] = db
        yield
        await db.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/complaints", status_code=201)
    async def file(body: Filing) -> dict[str, str]:
        t = state["template"]
        now = datetime.now(UTC)
        due = now + timedelta(days=t["time_limit_days"])
        cid = uuid.uuid4().hex
        tracking_no = f"{prefix}-{next(numbers):09d}"
        code = body.region_code
        await state["db"].execute(
            INSERT,
            (
                cid,
                tracking_no,
                t["citizen_id"],
                t["item_id"],
                body.item_code,
                code,
                code[:9] + "000",
                code[:6] + "000000",
                body.content,
                body.anonymous,
                body.contact_name,
                body.contact_phone,
                t["unit_id"],
                t["department_code"],
                t["department_region_code"],
                t["tier"],
                t["time_limit_days"],
                _at(now),
                _at(now + timedelta(days=1)),
                _at(due),
                json.dumps([]),
                _at(now),
                _at(now),
                _at(due - (due - now) / 3),
                _at(due - (due - now) / 6),
            ),
        )
        return {"id": cid, "tracking_no": tracking_no, "status": "submitted"}

    @app.get("/api/v1/complaints/{complaint_id}")
    async def track(complaint_id: str) -> dict[str, Any]:
        async with state["db"].execute(
            f"select * from {TABLE} where id = ?", (complaint_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise HTTPException(404)
        return dict(row)

    return app
