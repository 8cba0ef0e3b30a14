"""Throughput and latency of filing and tracking against the bare baseline.

wrk (Debian's, installed on first use) drives each server from a separate
process at fixed concurrency and duration. Rounds interleave baseline and app
(baseline filing, app filing, baseline tracking, app tracking, then again),
so drift on this shared 2-core machine hits both sides of every ratio alike.
After a warm-up of each scenario, the median over the rounds is kept.

Residents: filing is limited to 10 per resident per hour and 60 per IP per
hour (app/complaints/router.py). The limits are left on, since their
bookkeeping is part of what filing costs; instead every filing comes from one
of many residents (each with its own token and its own X-Forwarded-For
address) and no resident files more than 9 times in the whole run. Tokens are
issued with the app's TokenService and secret, valid for 3 hours.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import secrets
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from app.core.security import TokenService
from bench import pgwait
from bench.keys import CITIZEN_COLUMNS, citizen_identity
from bench.servers import (
    JWT_SECRET,
    Database,
    Server,
    backends_of,
    cpu_by_pid,
    cpu_spent,
    postgres_pids,
)

LUA = Path(__file__).resolve().parent / "wrk" / "requests.lua"
PER_RESIDENT = 9  # filings per resident over the whole run; the limit is 10 an hour
MAX_FILING_RPS = 2000  # generous ceiling used only to size the resident pool
RESIDENT_IDS_FROM = 50_000_000
SESSION_COLUMNS = (
    "id",
    "subject_kind",
    "subject_id",
    "kind",
    "generation",
    "created_at",
    "last_used_at",
    "expires_at",
)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing Debian's package", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is required: apt-get install wrk")
    return found


@dataclass
class LoadData:
    filing: Path
    tracking: Path
    residents: int
    tracked_cases: int


async def prepare(
    db: Database, work: Path, residents: int, tracked: int, now: datetime
) -> LoadData:
    """Residents with tokens and filing bodies; owners' tokens for tracked cases."""
    tokens = TokenService(JWT_SECRET, access_minutes=180, refresh_days=1)
    rnd = random.Random(7)
    conn = await asyncpg.connect(db.dsn)
    try:
        # Far above the ids bench.datagen gives its residents, so the data can
        # still grow after load residents were added (bench.embedded).
        first = await conn.fetchval(
            "select greatest(coalesce(max(id), 0) + 1, $1) from citizens", RESIDENT_IDS_FROM
        )
        villages = [
            r["code"] for r in await conn.fetch("select code from regions where level = 'village'")
        ]
        await conn.copy_records_to_table(
            "citizens",
            records=[
                (first + i, *citizen_identity(f"load-{first + i}"), rnd.choice(villages), now, now)
                for i in range(residents)
            ],
            columns=CITIZEN_COLUMNS,
        )
        await conn.execute(
            "select setval(pg_get_serial_sequence('citizens', 'id'), "
            "(select max(id) from citizens))"
        )
        # What residents file about follows the data's own item and village mix.
        mix = await conn.fetch(
            "select item_code, region_code, content from complaints order by random() limit $1",
            residents,
        )
        # Owners of protected cases are not in the clear (citizen_id is NULL).
        cases = await conn.fetch(
            "select id, citizen_id from complaints where citizen_id is not null "
            "order by random() limit $1",
            tracked,
        )
        # Tokens work only while their server-side session does
        # (app/auth/sessions.py): one live api session per resident.
        owners = sorted({first + i for i in range(residents)} | {c["citizen_id"] for c in cases})
        sid = {cid: secrets.token_hex(16) for cid in owners}
        await conn.copy_records_to_table(
            "auth_sessions",
            records=[
                (sid[c], "citizen", c, "api", 0, now, now, now + timedelta(hours=3)) for c in owners
            ],
            columns=SESSION_COLUMNS,
        )
    finally:
        await conn.close()

    def token(citizen_id: int) -> str:
        return tokens.issue(
            subject=str(citizen_id), kind="citizen", now=now, session_id=sid[citizen_id]
        )[0]

    def address(i: int) -> str:  # a loopback-range label, one per resident
        return f"127.{1 + i // 65536 % 254}.{i // 256 % 256}.{i % 256}"

    filing = work / "filing.tsv"
    with filing.open("w", encoding="utf-8") as out:
        for i in range(residents):
            m = mix[i % len(mix)]
            body: dict[str, Any] = {
                "item_code": m["item_code"],
                "region_code": m["region_code"],
                "content": f"{m['content']}（{i}）",
                "anonymous": rnd.random() < 0.2,
            }
            if not body["anonymous"]:  # real-name filings must leave a phone number
                body["contact_name"] = "王某"
                body["contact_phone"] = f"13{rnd.randrange(10**9):09d}"
            out.write(f"{token(first + i)}\t{address(i)}\t{json.dumps(body, ensure_ascii=False)}\n")
    tracking = work / "tracking.tsv"
    with tracking.open("w", encoding="utf-8") as out:
        for i, c in enumerate(cases):
            out.write(f"{token(c['citizen_id'])}\t{address(i)}\t{c['id']}\n")
    return LoadData(filing, tracking, residents, len(cases))


async def make_baseline_table(db: Database) -> None:
    """The baseline's table: the complaints table's columns, types, defaults and
    indexes (no foreign keys), holding the same rows."""
    conn = await asyncpg.connect(db.dsn)
    try:
        await conn.execute("drop table if exists bench_baseline")
        await conn.execute("create table bench_baseline (like complaints including all)")
        await conn.execute("insert into bench_baseline select * from complaints")
        await conn.execute("vacuum analyze bench_baseline")
    finally:
        await conn.close()


def residents_needed(seconds: float) -> int:
    return int(MAX_FILING_RPS * seconds / PER_RESIDENT) + 100


def profile_load(
    wrk: str,
    server: Server,
    mode: str,
    data: Path,
    *,
    seconds: float,
    connections: int,
    offset: int,
) -> dict[str, Any]:
    """The load a profile samples: one wrk thread, two seconds longer than the
    recording so that it covers the whole of it."""
    return run_wrk(
        wrk,
        server,
        mode,
        data,
        seconds=seconds + 2,
        connections=connections,
        threads=1,
        offset=offset,
        tag=f"prof-{mode}",
    )


def run_wrk(
    wrk: str,
    server: Server,
    mode: str,
    data: Path,
    *,
    seconds: float,
    connections: int,
    threads: int,
    offset: int,
    tag: str,
) -> dict[str, Any]:
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        server.url,
        "--",
        mode,
        str(data),
        str(offset),
        str(threads),
        tag,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
    out: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    out["driver_cpu_s"] = round(
        (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2
    )
    return out


SCENARIOS = (
    ("filing", "baseline", "file"),
    ("filing", "app", "file"),
    ("tracking", "baseline", "track"),
    ("tracking", "app", "track"),
)


GOALS: dict[str, float | None] = {"filing": 0.40, "tracking": 0.60}


def shape(args: Any) -> dict[str, Any]:
    """The rounds, their length and the wrk concurrency from the command line,
    as ``measure`` takes them (every load stage runs the same shape)."""
    keys = ("seconds", "warmup", "rounds", "connections", "threads")
    return {k: getattr(args, k) for k in keys}


async def measure(
    db: Database | None,
    app: Server,
    baseline: Server,
    data: LoadData,
    *,
    seconds: float,
    warmup: float,
    rounds: int,
    connections: int,
    threads: int,
    goals: dict[str, float | None] | None = None,
    first_filing: int = 0,
) -> dict[str, Any]:
    """``db`` None: the servers use SQLite (bench.embedded); no backends to sample.

    ``first_filing``: where the app's filings start in the filing file (a second
    measurement must not reuse residents the first one brought to their limit)."""
    wrk = ensure_wrk()
    servers = {"app": app, "baseline": baseline}
    files = {"file": data.filing, "track": data.tracking}
    offsets = {"app": first_filing, "baseline": 0}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}

    async def one(what: str, who: str, mode: str, secs: float, tag: str) -> dict[str, Any]:
        server = servers[who]
        if db is None:
            await asyncio.sleep(1.0)  # let the previous round's accepted requests finish
            pg: list[int] = []
            sampler = None
        else:
            await quiesce(db)
            pg = await postgres_pids(db)
            sampler = pgwait.Sampler(db.dsn, db.name)
            sampler.start()
        worker = [server.worker.pid] if server.worker is not None else []
        # The worker's own backends (the projector's), to tell its share of
        # PostgreSQL's CPU from the requests'.
        worker_pg = await backends_of(db, worker) if db is not None and worker else []
        cpu0 = cpu_by_pid(server.pids()), cpu_by_pid(pg), cpu_by_pid(worker), cpu_by_pid(worker_pg)
        out = await asyncio.to_thread(
            run_wrk,
            wrk,
            server,
            mode,
            files[mode],
            seconds=secs,
            connections=connections,
            threads=threads,
            offset=offsets[who] if mode == "file" else 0,
            tag=tag,
        )
        if sampler is not None and db is not None:
            out["pg_activity"] = await sampler.stop()
            pg = sorted(set(pg) | set(await postgres_pids(db)))
            if worker:
                worker_pg = sorted(set(worker_pg) | set(await backends_of(db, worker)))
        else:
            out["pg_activity"] = {"counts": {}, "samples": 0}
        server_cpu = cpu_spent(cpu0[0], server.pids())
        pg_cpu = cpu_spent(cpu0[1], pg)
        worker_cpu = cpu_spent(cpu0[2], worker)
        worker_pg_cpu = cpu_spent(cpu0[3], worker_pg)
        if mode == "file":
            # Requests still in flight at the end may have been served too.
            offsets[who] += out["requests"] + connections
        n = max(1, out["requests"])
        out["rps"] = round(out["requests"] / (out["duration_us"] / 1e6), 1)
        out["server_cpu_ms_per_request"] = round(server_cpu * 1000 / n, 3)
        out["postgres_cpu_ms_per_request"] = round(pg_cpu * 1000 / n, 3)
        # The part of the server's CPU spent by its `ydt worker` (the projector).
        out["worker_cpu_ms_per_request"] = round(worker_cpu * 1000 / n, 3)
        # The part of PostgreSQL's CPU spent serving that worker.
        out["worker_postgres_cpu_ms_per_request"] = round(worker_pg_cpu * 1000 / n, 3)
        out["non_2xx"] = out["errors"]["status"]
        return out

    for what, who, mode in SCENARIOS:
        await one(what, who, mode, warmup, f"w-{who}")
    for r in range(rounds):
        for what, who, mode in SCENARIOS:
            out = await one(what, who, mode, seconds, f"r{r}-{who}")
            runs.setdefault((what, who), []).append(out)
            print(
                f"  round {r + 1} {what:8} {who:8} {out['rps']:8.1f} req/s "
                f"p50 {out['latency_us']['p50'] / 1000:.1f} ms "
                f"p99 {out['latency_us']['p99'] / 1000:.1f} ms non-2xx {out['non_2xx']}",
                flush=True,
            )
    result: dict[str, Any] = {
        "residents": data.residents,
        "tracked_cases": data.tracked_cases,
        "app_filings": offsets["app"],
    }
    for what, goal in (goals or GOALS).items():
        sides = {who: summarise(runs[(what, who)]) for who in ("baseline", "app")}
        per_round = [
            a["rps"] / b["rps"]
            for a, b in zip(runs[(what, "app")], runs[(what, "baseline")], strict=True)
            if b["rps"]
        ]
        ratio = sides["app"]["rps"] / sides["baseline"]["rps"] if sides["baseline"]["rps"] else 0
        result[what] = {
            **sides,
            "ratio": round(ratio, 3),
            "ratio_per_round": [round(x, 3) for x in per_round],
            "goal": goal,
            "met": None if goal is None else ratio >= goal,
        }
    return result


async def quiesce(db: Database, timeout: float = 30.0) -> None:
    """Wait until requests left over from the previous round have finished:
    wrk stops sending, but a server still works through what it accepted."""
    conn = await asyncpg.connect(db.dsn)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            busy = await conn.fetchval(
                "select count(*) from pg_stat_activity where datname = $1 "
                "and pid <> pg_backend_pid() and state <> 'idle'",
                db.name,
            )
            if not busy:
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str, sub: str | None = None) -> float:
        values = [r[key][sub] if sub else r[key] for r in runs]
        return float(statistics.median(values))

    return {
        "rps": round(med("rps"), 1),
        "p50_ms": round(med("latency_us", "p50") / 1000, 2),
        "p99_ms": round(med("latency_us", "p99") / 1000, 2),
        "server_cpu_ms_per_request": round(med("server_cpu_ms_per_request"), 3),
        "postgres_cpu_ms_per_request": round(med("postgres_cpu_ms_per_request"), 3),
        "worker_cpu_ms_per_request": round(med("worker_cpu_ms_per_request"), 3),
        "worker_postgres_cpu_ms_per_request": round(med("worker_postgres_cpu_ms_per_request"), 3),
        "driver_cpu_s": round(med("driver_cpu_s"), 2),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(
            r["errors"][k] for r in runs for k in ("connect", "read", "write", "timeout")
        ),
        "rounds_rps": [r["rps"] for r in runs],
        "postgres_backends": pgwait.merge([r["pg_activity"] for r in runs]),
    }
