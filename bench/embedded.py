"""The embedded default (SQLite, one worker) against a bare aiosqlite baseline.

The PostgreSQL bench database, once loaded at the smallest size and given
load residents with live sessions, is copied row by row into a SQLite file
migrated by the app's own migrations. ``bench_baseline`` there has the
complaints table's columns and indexes (its DDL, renamed) and the same rows.
Both servers then run with one uvicorn worker, and the same wrk scripts and
interleaved rounds as the PostgreSQL load (bench.load) measure filing and
tracking. There is no PostgreSQL to sample: CPU is the servers' own.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

import app.models  # noqa: F401  (every table in the metadata)
from app.core.db import Base, create_engine
from bench import keys as bench_keys
from bench import load, profile
from bench.report import P99_FACTOR
from bench.servers import JWT_SECRET, Database, start_server, utcnow
from tests import support
from tests.conftest import make_settings

SKIP = {"stats_pending", "bench_baseline"}


async def _copy(src: AsyncEngine, dst: AsyncEngine, batch: int = 5000) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with src.connect() as s_conn, dst.begin() as d_conn:
        for table in Base.metadata.sorted_tables:
            if table.name in SKIP:
                continue
            await d_conn.execute(table.delete())
            n = 0
            # Primary-key order: parents before children (regions, units).
            result = await s_conn.stream(select(table).order_by(*table.primary_key.columns))
            async for part in result.partitions(batch):
                rows = [dict(r._mapping) for r in part]
                await d_conn.execute(insert(table), rows)
                n += len(rows)
            counts[table.name] = n
        # The copy's events went through the queue trigger; the rollups came
        # across already folded, so nothing is left for the projector.
        await d_conn.exec_driver_sql("DELETE FROM stats_pending")
    return counts


def _baseline_table(path: Path) -> None:
    """``bench_baseline``: the complaints table's DDL and indexes, renamed."""
    con = sqlite3.connect(path)
    try:
        ddl = [
            r[0]
            for r in con.execute(
                "select sql from sqlite_master where tbl_name = 'complaints' and sql is not null "
                "order by type desc"
            )
        ]
        con.execute("drop table if exists bench_baseline")
        for sql in ddl:
            sql = re.sub(r"\bcomplaints\b", "bench_baseline", sql)
            sql = re.sub(r"\b(ix|uq|pk|ck|fk)_complaints", r"\1_bench_baseline", sql)
            con.execute(sql)
        con.execute("insert into bench_baseline select * from complaints")
        con.commit()
        con.execute("analyze")
    finally:
        con.close()


async def prepare(db: Database, work: Path) -> tuple[Path, dict[str, int]]:
    path = work / "embedded.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(support.alembic_upgrade, url)
    src = create_engine(make_settings(database_url=db.url), url=db.url)
    dst = create_engine(make_settings(database_url=url), url=url)
    try:
        counts = await _copy(src, dst)
    finally:
        await src.dispose()
        await dst.dispose()
    await asyncio.to_thread(_baseline_table, path)
    return path, counts


def app_env(path: Path, work: Path, port: int) -> dict[str, str]:
    """The embedded default as a user runs it: SQLite, local media, no Redis,
    and the public address where it serves, as ``ydt serve`` derives it
    (app/cli.py): the built-in WeChat stand-in answers there, so a filing's
    text check is answered, not deferred. At the port-less address the bench
    gave before, every filing tried a connection that failed, logged two
    warnings and left its case for the worker to check again."""
    return {
        "YDT_ENV": "development",
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{path}",
        "YDT_JWT_SECRET": JWT_SECRET,
        **bench_keys.ENV,
        "YDT_STORAGE": "local",
        "YDT_MEDIA_DIR": str(work / "media-embedded"),
        "YDT_LOG_LEVEL": "INFO",
        "YDT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }


def deferred_checks(log: Path) -> int:
    """Text checks the app could not get answered (WeChat unreachable)."""
    if not log.exists():
        return 0
    with log.open(encoding="utf-8", errors="replace") as f:
        return sum("text check deferred" in line for line in f)


async def run(args: Any, db: Database, work: Path) -> dict[str, Any]:
    """Prepare residents in PostgreSQL, copy, serve both, measure."""
    here = work / "embedded"
    here.mkdir(exist_ok=True)
    seconds = args.warmup + args.rounds * args.seconds
    data = await load.prepare(db, here, load.residents_needed(seconds), 2000, utcnow())
    t0 = time.perf_counter()
    path, counts = await prepare(db, here)
    copied = round(time.perf_counter() - t0, 1)
    port = support.free_port()
    app = start_server(
        "embedded-app",
        "app.main:create_app",
        app_env(path, here, port),
        1,
        here,
        projector=args.projector,
        port=port,
    )
    try:
        baseline = start_server(
            "embedded-baseline",
            "bench.baseline_sqlite_app:create_app",
            {"BENCH_SQLITE_PATH": str(path)},
            1,
            here,
        )
        try:
            # The worker's first round (a checkpoint over the copy's 10k chains,
            # red-card orders for its overdue history) holds SQLite's one
            # writer lock; it is a start-up's cost, not a filing's.
            settled = await asyncio.to_thread(app.worker_settled)
            result = await load.measure(
                None,
                app,
                baseline,
                data,
                **load.shape(args),
                goals={"filing": None, "tracking": None},
            )
        finally:
            baseline.stop()
        result["worker_settle_seconds"] = settled
        for what in ("filing", "tracking"):
            side = result[what]
            side["p99_vs_baseline"] = (
                round(side["app"]["p99_ms"] / side["baseline"]["p99_ms"], 2)
                if side["baseline"]["p99_ms"]
                else None
            )
        missed = (result["tracking"]["p99_vs_baseline"] or 0) > P99_FACTOR
        if args.profile == "always" or (args.profile == "auto" and missed):
            # What holds the one goal here: a py-spy of the read, as for PostgreSQL.
            print("profiling embedded tracking with py-spy", flush=True)
            result["profile"] = await asyncio.to_thread(
                profile.record,
                load.ensure_wrk(),
                app,
                "track",
                data.tracking,
                Path(args.out_dir) / f"{args.name}-profile-embedded-tracking.collapsed",
                seconds=args.profile_seconds,
                connections=args.connections,
                offset=0,
            )
    finally:
        app.stop()
    result["text_checks_deferred"] = deferred_checks(app.log)
    result["copied_rows"] = counts
    result["copy_seconds"] = copied
    result["workers"] = 1
    return result
