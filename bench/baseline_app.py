"""The physical limit: a bare FastAPI app with raw asyncpg, nothing else.

One INSERT of a complaint-wide row for filing, one SELECT by key for
tracking, on `bench_baseline`, which the runner creates as
`LIKE complaints INCLUDING ALL` (same columns, types, defaults and indexes)
and fills with the same rows. It serves the same paths as the app, so the
same wrk scripts drive both, and it starts through the same launcher
(bench.serve) with the same worker count. Its pool matches the app's
(the same size, no overflow, per worker: 12 in the bench, as the shared
PostgreSQL allows 100 connections).

No authentication, rate limiting, idempotency, routing, events, rollups or
logging: whatever the app spends beyond this is the price of its features.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

TABLE = "bench_baseline"
# The app's pool size in the bench (bench.servers.app_env), so both cap alike.
POOL = int(os.environ.get("BENCH_POOL", "12"))
INSERT = f"""
insert into {TABLE} (
    id, tracking_no, channel, citizen_id, item_id, item_code, region_code, township_code,
    county_code, content, anonymous, contact_name, contact_phone, accusation, status, version,
    unit_id, department_code, department_region_code, tier, time_limit_days, received_at,
    accept_due_at, due_at, routing_trace, created_at, updated_at, yellow_at, orange_at, priority,
    priority_flags, reopen_count
) values (
    $1, $2, 'online', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, false, 'submitted', 1, $13,
    $14, $15, $16, $17, $18, $19, $20, $21, $18, $18, $22, $23, 0, '[]', 0
)
"""


class Filing(BaseModel):
    item_code: str
    region_code: str
    content: str
    anonymous: bool = False
    contact_name: str | None = None
    contact_phone: str | None = None


def create_app() -> FastAPI:
    dsn = os.environ["BENCH_BASELINE_DSN"]
    state: dict[str, Any] = {}
    numbers = count(1)
    prefix = f"BL{os.getpid() % 100_000:05d}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=POOL)
        assert pool is not None
        # Any existing row supplies the foreign values routing would have chosen.
        state["template"] = await pool.fetchrow(
            f"select citizen_id, item_id, unit_id, department_code, department_region_code, "
            f"tier, time_limit_days from {TABLE} limit 1"
        )
        state["pool"] = pool
        yield
        await pool.close()

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
        await state["pool"].execute(
            INSERT,
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
            now,
            now + timedelta(days=1),
            due,
            json.dumps([]),
            due - (due - now) / 3,
            due - (due - now) / 6,
        )
        return {"id": cid, "tracking_no": tracking_no, "status": "submitted"}

    @app.get("/api/v1/complaints/{complaint_id}")
    async def track(complaint_id: str) -> dict[str, Any]:
        row = await state["pool"].fetchrow(f"select * from {TABLE} where id = $1", complaint_id)
        if row is None:
            raise HTTPException(404)
        return dict(row)

    return app
