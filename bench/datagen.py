"""Realistic complaints at volume, loaded with COPY into the app's own schema.

Distributions: receipts spread over the past year; villages weighted unevenly
(Pareto); items Zipf-distributed (a few items dominate, as in the articles:
village finances, subsidies, housing); statuses by age (old cases mostly
closed, recent ones open); 60% of closed cases rated, 80% satisfied; residents
who mostly file once and a few who file often. Every case carries the event
chain the app would have written (bench.lifecycle), and the rollups are
folded from those events through the app's own `rollup.fold`, so the
statistics agree with what `ydt stats rebuild` would compute.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.models.stats import METRICS
from app.stats import same_day
from app.stats.rollup import contribution, fold
from bench.keys import CITIZEN_COLUMNS, citizen_identity
from bench.lifecycle import EVENT_COLUMNS, Case, build_chain

TZ = ZoneInfo("Asia/Shanghai")
Row = tuple[object, ...]
OPEN = ("submitted", "accepted", "assigned", "in_progress", "reopened")
COLUMNS = [
    "id",
    "tracking_no",
    "channel",
    "citizen_id",
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
    "result",
]
RATING_COLUMNS = [
    "complaint_id",
    "round",
    "citizen_id",
    "score",
    "satisfaction",
    "comment",
    "reopened",
    "created_at",
]
CONTENT = (
    "村里低保评定不公开，有的人家里条件好也吃上了低保，希望纪委调查一下。",
    "我们组修路的钱账目一直没有公示，村干部说不清楚钱花到哪里去了。",
    "耕地地力保护补贴今年没有发到我的卡上，问了村上也没人管。",
    "危房改造名额被村干部的亲戚占了，真正住危房的人没有评上。",
    "村委会办事态度差，开个证明跑了好几趟都没办好。",
)


async def _reference(conn: asyncpg.Connection) -> dict[str, list[Any]]:
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
    units = await conn.fetch(
        "select id, kind, name, region_code, group_code from supervision_units"
    )
    return {"villages": list(villages), "items": list(items), "units": list(units)}


def _status(rnd: random.Random, old: bool) -> str:
    r = rnd.random()
    if old:
        if r < 0.88:
            return "closed"
        if r < 0.92:
            return "rejected"
        return "resolved" if r < 0.95 else rnd.choice(OPEN)
    if r < 0.35:
        return "closed"
    if r < 0.45:
        return "resolved"
    return "rejected" if r < 0.48 else rnd.choice(OPEN)


class Generator:
    """Makes cases chunk by chunk and folds their events into the rollups.

    Synchronous on purpose: the loader runs it in a thread, so Python builds
    the next chunk while PostgreSQL ingests the previous one (two cores).
    """

    def __init__(self, ref: dict[str, list[Any]], seed: int, now: datetime) -> None:
        self.rnd = rnd = random.Random(seed)
        self.now = now
        self.villages, self.items = ref["villages"], ref["items"]
        units = ref["units"]
        self.unit_name = {u["id"]: u["name"] for u in units}
        self.town_unit = {
            u["region_code"]: u["id"] for u in units if u["kind"] == "township_committee"
        }
        self.commission = {u["region_code"]: u["id"] for u in units if u["kind"] == "commission"}
        self.group_unit = {
            (u["region_code"], u["group_code"]): u["id"]
            for u in units
            if u["kind"] == "resident_group"
        }
        self.village_w = [rnd.paretovariate(1.5) for _ in self.villages]
        self.item_w = [1 / (rank + 1) ** 1.1 for rank in range(len(self.items))]
        rnd.shuffle(self.item_w)
        self.n_citizens = 0
        self.cases = self.events = self.ratings = 0
        self.rollup: dict[tuple[object, ...], list[int]] = defaultdict(lambda: [0] * len(METRICS))
        self.metric = {name: i for i, name in enumerate(METRICS)}
        self.counters: dict[str, int] = defaultdict(int)

    def citizens(self, n_cases: int) -> list[Row]:
        """New residents for n_cases in all: about 1.3 cases per resident."""
        rows: list[Row] = []
        upto = max(1, n_cases * 3 // 4)
        for i in range(self.n_citizens + 1, upto + 1):
            joined = self.now - timedelta(days=self.rnd.uniform(0, 400))
            village = self.rnd.choice(self.villages)["code"]
            rows.append((i, *citizen_identity(f"bench-{i}"), village, joined, joined))
        self.n_citizens = max(self.n_citizens, upto)
        return rows

    def _unit(self, v: Any, it: Any) -> int:
        if it["scope"] in ("village", "township"):
            unit = self.town_unit[v["township"]]
        elif it["scope"] == "county":
            unit = self.group_unit[(v["county"], it["group_code"])]
        else:
            unit = self.group_unit[("511700000000", it["group_code"])]
        if it["klass"] == "accusation" and it["scope"] == "township":
            unit = self.commission.get(v["county"], unit)
        return int(unit)

    def chunk(self, size: int) -> tuple[list[Row], list[Row], list[Row]]:
        rnd, now = self.rnd, self.now
        cases: list[Row] = []
        events: list[Row] = []
        ratings: list[Row] = []
        for _ in range(size):
            v = rnd.choices(self.villages, self.village_w)[0]
            it = rnd.choices(self.items, self.item_w)[0]
            unit = self._unit(v, it)
            age = timedelta(seconds=rnd.random() * 365 * 86400)
            received = now - age
            days = it["time_limit_days"]
            due = received + timedelta(days=days * 1.4)
            span = due - received
            status = _status(rnd, age > timedelta(days=45))
            accepted_at = (
                received + timedelta(hours=rnd.uniform(1, 30))
                if status not in ("submitted", "rejected")
                else None
            )
            closed_at = resolved_at = None
            if status in ("closed", "resolved", "reopened"):
                handling = span * (
                    rnd.uniform(0.2, 1.0) if rnd.random() < 0.9 else rnd.uniform(1.0, 1.6)
                )
                resolved_at = min(received + handling * 0.8, now)
                if status == "closed":
                    closed_at = min(received + handling, now)
            rating = None
            if closed_at and rnd.random() < 0.6:
                verdict = rnd.choices(["satisfied", "basic", "unsatisfied"], [80, 15, 5])[0]
                score = {
                    "satisfied": rnd.choice([4, 5]),
                    "basic": 3,
                    "unsatisfied": rnd.choice([1, 2]),
                }[verdict]
                rating = (verdict, score)
            day_key = received.astimezone(TZ).strftime("%Y%m%d")
            self.counters[day_key] += 1
            cid = uuid.UUID(int=rnd.getrandbits(128)).hex
            # 15% of cases come from the 1% of residents who file often.
            frequent = rnd.random() < 0.15
            citizen = rnd.randrange(max(1, self.n_citizens // 100) if frequent else self.n_citizens)
            citizen += 1
            chain = build_chain(
                Case(
                    cid,
                    citizen,
                    unit,
                    self.unit_name[unit],
                    status,
                    received,
                    accepted_at,
                    resolved_at,
                    closed_at,
                    due,
                    rating,
                ),
                rnd,
                now,
            )
            events.extend(chain.rows)
            found = contribution(fold(chain.events))
            if found is not None:
                row = self.rollup[(found[1], found[0], it["code"], v["township"], v["county"])]
                for k, delta in found[2].items():
                    row[self.metric[k]] += delta
            for ev in chain.events:
                if ev.kind == "rated" and rating:
                    ratings.append(
                        (cid, 1, citizen, rating[1], rating[0], "", False, ev.created_at)
                    )
            cases.append(
                (
                    cid,
                    f"DZ{day_key}-{self.counters[day_key]:06d}",
                    "online",
                    citizen,
                    it["id"],
                    it["code"],
                    v["code"],
                    v["township"],
                    v["county"],
                    rnd.choice(CONTENT),
                    rnd.random() < 0.2,
                    it["klass"] == "accusation",
                    status,
                    len(chain.rows) - 1,
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
                    chain.last,
                    closed_at,
                    due - span / 3,
                    due - span / 6,
                    0,
                    "[]",
                    int(status == "reopened"),
                    accepted_at,
                    resolved_at,
                    "经核查，问题已整改到位" if resolved_at else None,
                )
            )
        return cases, events, ratings


class Loader:
    """Grows one database in stages (10k, then 100k, then 1M cases), so each
    size is measured on the same database that a real deployment would have
    grown into, and the schema is built and seeded only once."""

    def __init__(self, dsn: str, *, seed: int = 1, now: datetime | None = None) -> None:
        self.dsn, self.seed = dsn, seed
        self.now = now or datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
        self.gen: Generator | None = None

    async def grow_to(self, n: int, *, chunk: int = 10_000) -> dict[str, int]:
        conn = await asyncpg.connect(self.dsn)
        try:
            # Bulk load: skip the per-row foreign-key triggers (the generator
            # only references rows it made or the seeded reference data).
            await conn.execute("set session_replication_role = replica")
            if self.gen is None:
                self.gen = Generator(await _reference(conn), self.seed, self.now)
            gen = self.gen
            await conn.copy_records_to_table(
                "citizens",
                records=gen.citizens(n),
                columns=CITIZEN_COLUMNS,
            )
            await conn.execute(
                "select setval(pg_get_serial_sequence('citizens', 'id'), "
                "(select max(id) from citizens))"
            )

            async def copy(cases: list[Row], events: list[Row], ratings: list[Row]) -> None:
                await conn.copy_records_to_table("complaints", records=cases, columns=COLUMNS)
                await conn.copy_records_to_table(
                    "complaint_events", records=events, columns=EVENT_COLUMNS
                )
                if ratings:
                    await conn.copy_records_to_table(
                        "ratings", records=ratings, columns=RATING_COLUMNS
                    )
                gen.cases += len(cases)
                gen.events += len(events)
                gen.ratings += len(ratings)

            pending: asyncio.Task[None] | None = None
            for start in range(gen.cases, n, chunk):
                rows = await asyncio.to_thread(gen.chunk, min(chunk, n - start))
                if pending is not None:
                    await pending
                pending = asyncio.create_task(copy(*rows))
            if pending is not None:
                await pending
            stats_rows = await _write_rollups(conn, gen)
            await conn.execute("set session_replication_role = origin")
            await _same_day(self.dsn)
            return {
                "complaints": gen.cases,
                "citizens": gen.n_citizens,
                "events": gen.events,
                "ratings": gen.ratings,
                "stats_rows": stats_rows,
            }
        finally:
            await conn.close()


async def _same_day(dsn: str) -> int:
    """The 两个当天 tables, recounted by the app's own rebuild from the cases
    and the outbox (the generator writes no notices: every case counts untold)."""
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with AsyncSession(engine) as session:
            counted = await same_day.rebuild(session)
            await session.commit()
            return counted
    finally:
        await engine.dispose()


async def _write_rollups(conn: asyncpg.Connection, gen: Generator) -> int:
    """(Re)write the history rollups from everything generated so far."""
    await conn.execute(
        "truncate stats_daily, stats_town_day, stats_unit_month, stats_item_month, "
        "stats_city_item_month"
    )
    rows = [(*k, *vals) for k, vals in gen.rollup.items()]
    await conn.copy_records_to_table(
        "stats_daily",
        records=rows,
        columns=["day", "unit_id", "item_code", "township_code", "county_code", *METRICS],
    )
    await _coarse_rollups(conn)
    await conn.execute(
        "insert into tracking_counters(day, value) "
        "select to_date(substr(tracking_no, 3, 8), 'YYYYMMDD'), "
        "max(cast(substr(tracking_no, 12) as integer)) from complaints "
        "where tracking_no like 'DZ%' group by 1 "
        "on conflict (day) do update set value = greatest(tracking_counters.value, excluded.value)"
    )
    return len(rows)


async def _coarse_rollups(conn: asyncpg.Connection) -> None:
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
        ("stats_city_item_month", "month, item_code", f"{month}, item_code", "1, 2"),
    ):
        await conn.execute(
            f"insert into {table}({keys}, {cols}) "
            f"select {select_keys}, {sums} from stats_daily group by {group}"
        )
