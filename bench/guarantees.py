"""After the load: every guarantee the fast paths must keep, checked on the
data and the running app (PostgreSQL).

* per-day tracking numbers: the numbers of each day the run filed on are
  exactly 1..counter, no gap, no repeat;
* the chain: every event of every case filed in the run verifies (format 2,
  keyed commitments);
* the rollups: once the projector has drained, each rollup table moved by
  exactly what folding the new cases' events gives, which is what a rebuild
  adds for them (the loaded data equals the rebuild by construction); the
  class-case alert's running 30-day counts equal stats_daily summed over
  their window;
* idempotency: a retry replays the same body and creates nothing; the same
  key with another body is a 409; six concurrent duplicates make one case;
* rate limits: the 11th filing in an hour is a 429;
* ownership: another resident's case is a 404;
* tracking: the one-statement read's body is byte-identical to the ORM read's.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import repository, service
from app.complaints.events import GENESIS, compute_hash
from app.core import keys
from app.core.db import create_engine
from app.core.security import TokenService
from app.core.storage.local import LocalMediaStore
from app.models import Complaint, ComplaintEvent, StatsOpenDue, StatsPending
from app.models.stats import METRICS
from app.stats import rollup
from bench import keys as bench_keys
from bench.keys import CITIZEN_COLUMNS, citizen_identity
from bench.load import SESSION_COLUMNS
from bench.servers import JWT_SECRET, Database, Server
from tests.conftest import make_settings

Rows = dict[tuple[str, tuple[Any, ...]], dict[str, int]]


async def rollup_rows(db: Database) -> Rows:
    """Every row of the history rollups and of stats_open_due, without zeros."""
    engine = create_engine(make_settings(database_url=db.url), url=db.url)
    out: Rows = {}
    try:
        async with AsyncSession(engine) as s:
            for model in rollup.ROLLUP_TABLES:
                pk = [c.name for c in model.__table__.primary_key.columns]
                for r in (await s.execute(select(model))).scalars():
                    counts = {m: getattr(r, m) for m in METRICS if getattr(r, m)}
                    if counts:
                        out[(model.__tablename__, tuple(getattr(r, k) for k in pk))] = counts
            for r in (await s.execute(select(StatsOpenDue))).scalars():
                if r.open:
                    key = (r.due_day, r.unit_id, r.item_code, r.township_code)
                    out[("stats_open_due", key)] = {"open": r.open}
    finally:
        await engine.dispose()
    return out


def _diff(after: Rows, before: Rows) -> Rows:
    out: Rows = {}
    for key in after.keys() | before.keys():
        a, b = after.get(key, {}), before.get(key, {})
        d = {m: a.get(m, 0) - b.get(m, 0) for m in a.keys() | b.keys()}
        d = {m: v for m, v in d.items() if v}
        if d:
            out[key] = d
    return out


async def _drained(db: Database, timeout: float = 120.0) -> float:
    engine = create_engine(make_settings(database_url=db.url), url=db.url)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            async with AsyncSession(engine) as s:
                left = (
                    await s.execute(select(func.count()).select_from(StatsPending))
                ).scalar_one()
            if not left:
                break
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    return round(time.monotonic() - t0, 1)


RECENT_VS_DAILY = """
with w as (
    select last_day, last_day - (days - 1) as first_day from stats_recent_window
    where name = 'cluster'
), daily as (
    select d.unit_id, d.item_code, d.township_code, sum(d.received) as n
    from stats_daily d, w where d.day between w.first_day and w.last_day
    group by 1, 2, 3
    union all
    select 0, d.item_code, d.township_code, sum(d.received)
    from stats_daily d, w where d.day between w.first_day and w.last_day
    group by 2, 3
), want as (
    select * from daily where n <> 0
), have as (
    select unit_id, item_code, township_code, received as n
    from stats_recent_cluster where received <> 0
)
select (select last_day from w) as last_day,
       (select count(*) from have) as rows,
       (select count(*) from (select * from want except select * from have) a)
     + (select count(*) from (select * from have except select * from want) b) as differ
"""


async def _recent_window(db: Database) -> dict[str, Any]:
    """The class-case alert's running window (app/stats/recent.py) against
    stats_daily summed over the days it names, row for row."""
    conn = await asyncpg.connect(db.dsn)
    try:
        row = await conn.fetchrow(RECENT_VS_DAILY)
    finally:
        await conn.close()
    assert row is not None
    return {
        "check": "class-case window equals stats_daily summed over its 30 days",
        "value": f"{row['rows']} rows through {row['last_day']}, {row['differ']} differ",
        "ok": row["last_day"] is not None and row["differ"] == 0 and row["rows"] > 0,
    }


async def _new_cases(db: Database, since: datetime) -> dict[str, Any]:
    """Chains, expected rollup moves and numbering of the cases filed since ``since``."""
    keys.install(bench_keys.KEYRING)
    engine = create_engine(make_settings(database_url=db.url), url=db.url)
    expected: Rows = defaultdict(lambda: defaultdict(int))  # type: ignore[arg-type]
    chains = events = broken = 0
    try:
        async with AsyncSession(engine) as s:
            cases = {
                c.id: c
                for c in (
                    await s.execute(select(Complaint).where(Complaint.created_at >= since))
                ).scalars()
            }
            ids = list(cases)
            for i in range(0, len(ids), 2000):
                part = ids[i : i + 2000]
                rows = (
                    await s.execute(
                        select(ComplaintEvent)
                        .where(ComplaintEvent.complaint_id.in_(part))
                        .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
                    )
                ).scalars()
                by_case: dict[str, list[ComplaintEvent]] = defaultdict(list)
                for e in rows:
                    by_case[e.complaint_id].append(e)
                for cid, evs in by_case.items():
                    chains += 1
                    prev = GENESIS
                    for e in evs:
                        events += 1
                        if e.prev_hash != prev or e.hash != compute_hash(prev, e):
                            broken += 1
                        prev = e.hash
                    found = rollup.contribution(rollup.fold(evs))
                    c = cases[cid]
                    if found is not None:
                        unit_id, day, counts = found
                        key = rollup.Key(day, unit_id, c.item_code, c.township_code, c.county_code)
                        for model, k in rollup.coarse_keys(key):
                            pk = tuple(k[c.name] for c in model.__table__.primary_key.columns)
                            bucket = expected[(model.__tablename__, pk)]
                            for m, v in counts.items():
                                bucket[m] += v
                    wanted = rollup.open_key(c)
                    if wanted is not None:
                        okey = (wanted[1], wanted[0], c.item_code, c.township_code)
                        expected[("stats_open_due", okey)]["open"] += 1
            numbers: dict[str, list[int]] = defaultdict(list)
            days = {c.tracking_no.split("-")[0] for c in cases.values()}
            for day_prefix in days:
                for no in (
                    await s.execute(
                        select(Complaint.tracking_no).where(
                            Complaint.tracking_no.like(f"{day_prefix}-%")
                        )
                    )
                ).scalars():
                    numbers[day_prefix].append(int(no.rsplit("-", 1)[1]))
    finally:
        await engine.dispose()
    gapless = all(sorted(n) == list(range(1, len(n) + 1)) for n in numbers.values())
    return {
        "cases": len(cases),
        "chains": chains,
        "events": events,
        "broken": broken,
        "expected": {k: dict(v) for k, v in expected.items()},
        "numbers": {k: (len(v), max(v) if v else 0) for k, v in numbers.items()},
        "gapless": gapless,
    }


async def _resident(db: Database, now: datetime, label: str) -> dict[str, str]:
    conn = await asyncpg.connect(db.dsn)
    try:
        cid = await conn.fetchval("select coalesce(max(id), 0) + 1 from citizens")
        village = await conn.fetchval("select code from regions where level = 'village' limit 1")
        await conn.copy_records_to_table(
            "citizens",
            records=[(cid, *citizen_identity(f"check-{label}-{cid}"), village, now, now)],
            columns=CITIZEN_COLUMNS,
        )
        await conn.execute(
            "select setval(pg_get_serial_sequence('citizens', 'id'), "
            "(select max(id) from citizens))"
        )
        sid = secrets.token_hex(16)
        await conn.copy_records_to_table(
            "auth_sessions",
            records=[(sid, "citizen", cid, "api", 0, now, now, now + timedelta(hours=3))],
            columns=SESSION_COLUMNS,
        )
        body = await conn.fetchrow(
            "select item_code, region_code from complaints order by created_at limit 1"
        )
    finally:
        await conn.close()
    token = TokenService(JWT_SECRET, access_minutes=180, refresh_days=1).issue(
        subject=str(cid), kind="citizen", now=now, session_id=sid
    )[0]
    return {
        "Authorization": f"Bearer {token}",
        "X-Forwarded-For": f"10.{cid // 65536 % 256}.{cid // 256 % 256}.{cid % 256}",
        "item_code": body["item_code"],
        "region_code": body["region_code"],
    }


def _filing(h: dict[str, str], text: str) -> dict[str, Any]:
    return {
        "item_code": h["item_code"],
        "region_code": h["region_code"],
        "content": f"核查用：{text}，村里的账目长期没有公开，请核实处理。",
        "anonymous": False,
        "contact_name": "核查",
        "contact_phone": "13800000000",
    }


async def _http_checks(db: Database, app: Server, now: datetime) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    a, b = await _resident(db, now, "a"), await _resident(db, now, "b")
    ha = {k: v for k, v in a.items() if k in ("Authorization", "X-Forwarded-For")}
    hb = {k: v for k, v in b.items() if k in ("Authorization", "X-Forwarded-For")}
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as c:
        first = await c.post(
            "/api/v1/complaints", headers=ha | {"Idempotency-Key": "g-1"}, json=_filing(a, "一")
        )
        again = await c.post(
            "/api/v1/complaints", headers=ha | {"Idempotency-Key": "g-1"}, json=_filing(a, "一")
        )
        checks.append(
            {
                "check": "a retry replays the same body",
                "value": f"{first.status_code}/{again.status_code}",
                "ok": first.status_code == 201 and again.content == first.content,
            }
        )
        other = await c.post(
            "/api/v1/complaints", headers=ha | {"Idempotency-Key": "g-1"}, json=_filing(a, "二")
        )
        checks.append(
            {
                "check": "same key, other body: 409",
                "value": other.status_code,
                "ok": other.status_code == 409,
            }
        )
        dupes = await asyncio.gather(
            *(
                c.post(
                    "/api/v1/complaints",
                    headers=ha | {"Idempotency-Key": "g-dup"},
                    json=_filing(a, "三"),
                )
                for _ in range(6)
            )
        )
        made = {r.json().get("id") for r in dupes if r.status_code == 201}
        checks.append(
            {
                "check": "six concurrent duplicates make one case",
                "value": f"{len(made)} case(s); {sorted(r.status_code for r in dupes)}",
                "ok": len(made) == 1,
            }
        )
        codes = []
        for i in range(12):  # two used above; the limit is 10 an hour
            r = await c.post(
                "/api/v1/complaints",
                headers=hb | {"Idempotency-Key": f"g-lim-{i}"},
                json=_filing(b, f"限{i}"),
            )
            codes.append(r.status_code)
        checks.append(
            {
                "check": "the 11th filing in an hour is a 429",
                "value": f"{codes.count(201)}x201 then {codes[10]}",
                "ok": codes[:10] == [201] * 10 and codes[10] == 429,
            }
        )
        mine = first.json()["id"]
        theirs = await c.get(f"/api/v1/complaints/{mine}", headers=hb)
        checks.append(
            {
                "check": "another resident's case is a 404",
                "value": theirs.status_code,
                "ok": theirs.status_code == 404,
            }
        )
        own = await c.get(f"/api/v1/complaints/{mine}", headers=ha)
    checks.append(await _same_bytes(db, mine, own.content))
    return checks


async def _same_bytes(db: Database, cid: str, body: bytes) -> dict[str, Any]:
    settings = make_settings(database_url=db.url)
    engine = create_engine(settings, url=db.url)
    try:
        async with AsyncSession(engine) as s:
            row = await repository.summary(s, cid)
            assert row is not None
            store = LocalMediaStore(
                settings.media_dir, secret=JWT_SECRET, public_base_url="http://127.0.0.1"
            )
            detail = await service._detail(
                s, row, store, settings, now=datetime.now().astimezone(), with_media=True
            )
    finally:
        await engine.dispose()
    expected = bytes(JSONResponse(content=detail.model_dump(mode="json")).body)
    return {
        "check": "tracking body byte-identical to the ORM read",
        "value": f"{len(body)} bytes",
        "ok": body == expected,
    }


async def check(db: Database, app: Server, since: datetime, before: Rows) -> dict[str, Any]:
    """Run every check; ``before``: the rollups when the load started."""
    lag = await _drained(db)
    found = await _new_cases(db, since)
    moved = _diff(await rollup_rows(db), before)
    expected = {k: v for k, v in found["expected"].items() if any(v.values())}
    checks = [
        {
            "check": "per-day tracking numbers 1..N, no gap",
            "value": "; ".join(
                f"{k}: {n} numbers, max {m}" for k, (n, m) in found["numbers"].items()
            ),
            "ok": found["gapless"],
        },
        {
            "check": "every new chain verifies (hash v2, keyed commitments)",
            "value": (
                f"{found['chains']} chains, {found['events']} events, {found['broken']} broken"
            ),
            "ok": found["broken"] == 0 and found["chains"] == found["cases"],
        },
        {
            "check": "rollups equal the rebuild after the projector drained",
            "value": f"{len(moved)} rows moved; drained {lag} s after the load",
            "ok": moved == expected,
        },
        await _recent_window(db),
    ]
    since_http = datetime.now().astimezone()
    checks += await _http_checks(db, app, since_http)
    return {"checks": checks, "new_cases": found["cases"], "drain_seconds": lag}
