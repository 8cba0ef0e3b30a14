"""Realistic complaints at volume, loaded with COPY into the app's own schema.

Distributions: receipts spread over the past year with a weekday bias;
villages weighted unevenly; items Zipf-distributed (a few items dominate, as
in the articles: village finances, subsidies, housing); statuses by age (old
cases mostly closed, recent ones open); 60% of closed cases rated, 80%
satisfied. Rollups (stats_daily) are aggregated from the same records, so the
figures agree with the complaints. Events are not generated here: the
statistics read rollups, not events.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from app.models.stats import METRICS

TZ = ZoneInfo("Asia/Shanghai")
OPEN = ("submitted", "accepted", "assigned", "in_progress", "reopened")
COLUMNS = [
    "id",
    "tracking_no",
    "channel",
    "item_id",
    "item_code",
    "region_code",
    "township_code",
    "county_code",
    "content",
    "anonymous",
    "accusation",
    "status",
    "version",
    "unit_id",
    "department_code",
    "department_region_code",
    "tier",
    "time_limit_days",
    "received_at",
    "accept_due_at",
    "due_at",
    "routing_trace",
    "created_at",
    "updated_at",
    "closed_at",
    "yellow_at",
    "orange_at",
    "priority",
    "priority_flags",
    "reopen_count",
    "accepted_at",
    "resolved_at",
]


async def _reference(conn: asyncpg.Connection) -> dict[str, object]:
    villages = await conn.fetch(
        "select v.code, t.code as township, c.code as county from regions v "
        "join regions t on t.code = v.parent_code join regions c on c.code = t.parent_code "
        "where v.level = 'village'"
    )
    items = await conn.fetch(
        "select i.id, i.code, i.scope, i.tier, i.time_limit_days, i.klass, d.code as dept, "
        "d.group_code "
        "from items i join departments d on d.code = i.department_code "
        "join taxonomy_versions v on v.id = i.version_id where v.is_current and not i.retired"
    )
    units = await conn.fetch("select id, kind, region_code, group_code from supervision_units")
    return {"villages": villages, "items": items, "units": units}


async def generate(
    dsn: str, n: int, *, seed: int = 1, now: datetime | None = None, chunk: int = 50_000
) -> dict[str, int]:
    rnd = random.Random(seed)
    now = now or datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    conn = await asyncpg.connect(dsn)
    try:
        ref = await _reference(conn)
        villages = list(ref["villages"])  # type: ignore[call-overload]
        items = list(ref["items"])  # type: ignore[call-overload]
        units = list(ref["units"])  # type: ignore[call-overload]
        town_unit = {u["region_code"]: u["id"] for u in units if u["kind"] == "township_committee"}
        commission = {u["region_code"]: u["id"] for u in units if u["kind"] == "commission"}
        group_unit = {
            (u["region_code"], u["group_code"]): u["id"]
            for u in units
            if u["kind"] == "resident_group"
        }
        village_w = [rnd.paretovariate(1.5) for _ in villages]
        item_w = [1 / (rank + 1) ** 1.1 for rank in range(len(items))]
        rnd.shuffle(item_w)
        rollup: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0] * len(METRICS))
        m = {name: i for i, name in enumerate(METRICS)}

        def bump(
            day: datetime, unit: int, item: str, town: str, county: str, **deltas: int
        ) -> None:
            row = rollup[(day.astimezone(TZ).date(), unit, item, town, county)]
            for k, v in deltas.items():
                row[m[k]] += v

        batch: list[tuple[object, ...]] = []
        counters: dict[str, int] = defaultdict(int)
        for _ in range(n):
            v = rnd.choices(villages, village_w)[0]
            it = rnd.choices(items, item_w)[0]
            age = timedelta(seconds=rnd.random() * 365 * 86400)
            received = now - age
            if it["scope"] in ("village", "township"):
                unit = town_unit[v["township"]]
            elif it["scope"] == "county":
                unit = group_unit[(v["county"], it["group_code"])]
            else:
                unit = group_unit[("511700000000", it["group_code"])]
            if it["klass"] == "accusation":
                unit = commission.get(v["county"], unit) if it["scope"] == "township" else unit
            days = it["time_limit_days"]
            due = received + timedelta(days=days * 1.4)
            span = due - received
            old = age > timedelta(days=45)
            r = rnd.random()
            status = (
                (
                    "closed"
                    if r < 0.88
                    else "rejected"
                    if r < 0.92
                    else "resolved"
                    if r < 0.95
                    else rnd.choice(OPEN)
                )
                if old
                else (
                    "closed"
                    if r < 0.35
                    else "resolved"
                    if r < 0.45
                    else "rejected"
                    if r < 0.48
                    else rnd.choice(OPEN)
                )
            )
            accepted_at = (
                received + timedelta(hours=rnd.uniform(1, 30))
                if status not in ("submitted", "rejected")
                else None
            )
            closed_at = None
            if status == "closed":
                handling = span * (
                    rnd.uniform(0.2, 1.0) if rnd.random() < 0.9 else rnd.uniform(1.0, 1.6)
                )
                closed_at = min(received + handling, now)
            day_key = received.astimezone(TZ).strftime("%Y%m%d")
            counters[day_key] += 1
            cid = uuid.UUID(int=rnd.getrandbits(128)).hex
            batch.append(
                (
                    cid,
                    f"DZ{day_key}-{counters[day_key]:06d}",
                    "online",
                    it["id"],
                    it["code"],
                    v["code"],
                    v["township"],
                    v["county"],
                    "（基准测试数据）群众反映的问题描述",
                    rnd.random() < 0.2,
                    it["klass"] == "accusation",
                    status,
                    1,
                    unit,
                    it["dept"],
                    v["county"],
                    it["tier"],
                    days,
                    received,
                    received + timedelta(days=1.4),
                    due,
                    "[]",
                    received,
                    closed_at or received,
                    closed_at,
                    due - span / 3,
                    due - span / 6,
                    0,
                    "[]",
                    0,
                    accepted_at,
                    closed_at,
                )
            )
            bump(received, unit, it["code"], v["township"], v["county"], received=1)
            if accepted_at:
                bump(accepted_at, unit, it["code"], v["township"], v["county"], accepted=1)
            if closed_at:
                on_time = closed_at <= due
                bump(
                    closed_at,
                    unit,
                    it["code"],
                    v["township"],
                    v["county"],
                    closed=1,
                    closed_on_time=int(on_time),
                    handling_days_sum=max(1, int((closed_at - received).days * 5 / 7)),
                )
                if rnd.random() < 0.6:
                    verdict = rnd.choices(["satisfied", "basic", "unsatisfied"], [80, 15, 5])[0]
                    score = {
                        "satisfied": rnd.choice([4, 5]),
                        "basic": 3,
                        "unsatisfied": rnd.choice([1, 2]),
                    }[verdict]
                    bump(
                        closed_at + timedelta(hours=6),
                        unit,
                        it["code"],
                        v["township"],
                        v["county"],
                        rated=1,
                        score_sum=score,
                        unsolved=int(verdict == "unsatisfied"),
                        **{verdict: 1},
                    )
            if len(batch) >= chunk:
                await conn.copy_records_to_table("complaints", records=batch, columns=COLUMNS)
                batch.clear()
        if batch:
            await conn.copy_records_to_table("complaints", records=batch, columns=COLUMNS)
        rows = [(*k, *vals) for k, vals in rollup.items()]
        await conn.copy_records_to_table(
            "stats_daily",
            records=rows,
            columns=["day", "unit_id", "item_code", "township_code", "county_code", *METRICS],
        )
        sums = ", ".join(f"sum({m})" for m in METRICS)
        cols = ", ".join(METRICS)
        month = "date_trunc('month', day)::date"
        for table, keys, select_keys, group in (
            (
                "stats_town_day",
                "day, township_code, county_code",
                "day, township_code, min(county_code)",
                "1, 2",
            ),
            (
                "stats_unit_month",
                "month, unit_id, county_code",
                f"{month}, unit_id, county_code",
                "1, 2, 3",
            ),
            (
                "stats_item_month",
                "month, item_code, county_code",
                f"{month}, item_code, county_code",
                "1, 2, 3",
            ),
        ):
            await conn.execute(
                f"insert into {table}({keys}, {cols}) "
                f"select {select_keys}, {sums} from stats_daily group by {group}"
            )
        await conn.execute(
            "insert into tracking_counters(day, value) "
            "select to_date(substr(tracking_no, 3, 8), 'YYYYMMDD'), "
            "max(cast(substr(tracking_no, 12) as integer)) from complaints group by 1 "
            "on conflict (day) do update set value = excluded.value"
        )
        await conn.execute("analyze")
        return {"complaints": n, "stats_rows": len(rows)}
    finally:
        await conn.close()
