"""Every benchmark from one command; results in bench/results/latest.{json,md}.

    python -m bench                      # full run: 10k, 100k, 1M (about 15 minutes)
    python -m bench --sizes 10000 100000 # a shorter growth run
    python -m bench --smoke              # seconds; what CI runs so the bench cannot rot

One PostgreSQL database is created, migrated and seeded, then grown in
stages; at each size the app is served by uvicorn and the staff reads are
timed. At the largest size the bare baseline is started beside it and wrk
measures filing and tracking against it (bench.load). Then the media memory
benchmark runs (bench.media_memory). If a throughput goal is missed, py-spy
profiles the app under that load (bench.profile). The database is dropped at
the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    bouncer,
    embedded,
    growth,
    guarantees,
    load,
    media_memory,
    pgprofile,
    profile,
)
from bench.datagen import Loader  # noqa: E402
from bench.machine import describe  # noqa: E402
from bench.report import goals, markdown  # noqa: E402
from bench.servers import (  # noqa: E402
    Database,
    after_load,
    app_env,
    backends_of,
    create_database,
    drop_database,
    postgres_pids,
    staff_token,
    start_server,
    utcnow,
)

SMOKE = {
    "sizes": [200, 600],
    "seconds": 1.0,
    "warmup": 1.0,
    "rounds": 1,
    "connections": 8,
    "growth_rounds": 2,
    "growth_warmup": 1,
    "media_mb": 4,
    "profile": "never",
    "name": "smoke",
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--seconds", type=float, default=10.0, help="length of one load round")
    p.add_argument("--warmup", type=float, default=5.0, help="warm-up per load scenario")
    p.add_argument("--rounds", type=int, default=5, help="load rounds (median kept)")
    p.add_argument("--connections", type=int, default=32, help="wrk concurrency")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--workers", type=int, default=2, help="uvicorn workers, app and baseline")
    p.add_argument("--growth-rounds", type=int, default=15)
    p.add_argument("--growth-warmup", type=int, default=3)
    p.add_argument("--media-mb", type=int, default=300)
    p.add_argument("--profile", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--profile-seconds", type=float, default=15.0)
    p.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["growth", "load", "media", "embedded", "pgbouncer"],
    )
    p.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    p.add_argument("--name", default="latest", help="results file name, without extension")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds in all")
    p.add_argument("--work-dir", help="keep server logs and load files here (default: temporary)")
    p.add_argument(
        "--projector",
        choices=["worker", "app"],
        default="worker",
        help="where the statistics projector runs: a `ydt worker` beside the app, as "
        "scripts/run.sh deploys it (its CPU counted as the app's), or inside each app process",
    )
    p.add_argument(
        "--keep-db", action="store_true", help="keep the generated database to look into afterwards"
    )
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    args.sizes = sorted(set(args.sizes))
    return args


async def load_stage(
    args: argparse.Namespace, db: Database, app: Any, work: Path, out_dir: Path
) -> dict[str, Any]:
    wrk = load.ensure_wrk()
    size = args.sizes[-1]
    await load.make_baseline_table(db)
    profile_seconds = args.profile_seconds if args.profile != "never" else 0
    filing_seconds = args.warmup + args.rounds * args.seconds + 2 * profile_seconds
    if "pgbouncer" not in args.skip:
        filing_seconds += args.warmup + args.rounds * args.seconds
    data = await load.prepare(
        db, work, load.residents_needed(filing_seconds), min(size, 5000), utcnow()
    )
    baseline = start_server(
        "baseline",
        "bench.baseline_app:create_app",
        {"BENCH_BASELINE_DSN": db.dsn},
        args.workers,
        work,
    )
    before = await guarantees.rollup_rows(db)
    since = utcnow()
    try:
        result = await load.measure(
            db,
            app,
            baseline,
            data,
            **load.shape(args),
        )
        if "pgbouncer" not in args.skip:
            result["pgbouncer"] = await _through_pgbouncer(
                args, db, baseline, data, work, first_filing=result["app_filings"]
            )
            result["app_filings"] = result["pgbouncer"].get("app_filings", result["app_filings"])
        missed = [w for w in ("filing", "tracking") if not result[w]["met"]]
        wanted = {"always": ["filing", "tracking"], "auto": missed, "never": []}[args.profile]
        if wanted:
            result["profile"] = await _profile(
                args, db, wrk, app, baseline, data, out_dir, wanted, result
            )
    finally:
        baseline.stop()
    result["size"] = size
    print("checking the guarantees", flush=True)
    result["guarantees"] = await guarantees.check(db, app, since, before)
    return result


async def _profile(
    args: argparse.Namespace,
    db: Database,
    wrk: str,
    app: Any,
    baseline: Any,
    data: Any,
    out_dir: Path,
    wanted: list[str],
    result: dict[str, Any],
) -> dict[str, Any]:
    """py-spy on the app and, where perf may run, perf on PostgreSQL under the
    app's load and again under the bare baseline's (bench.pgprofile)."""
    exe = await asyncio.to_thread(pgprofile.perf)
    out: dict[str, Any] = {}
    offset = result["app_filings"]
    for what in wanted:
        mode = "file" if what == "filing" else "track"
        file = data.filing if mode == "file" else data.tracking
        stem = f"{args.name}-profile-{what}"
        pg_ms = {
            who: result[what][who].get("postgres_cpu_ms_per_request")
            for who in result[what]
            if who in ("app", "baseline")
        }
        print(f"profiling {what} with py-spy{' and perf' if exe else ''}", flush=True)
        pids = await postgres_pids(db)
        worker = app.worker
        worker_pg = (
            frozenset(await backends_of(db, [worker.pid])) if worker is not None else frozenset()
        )
        out[what] = await asyncio.to_thread(
            profile.record,
            wrk,
            app,
            mode,
            file,
            out_dir / f"{stem}.collapsed",
            seconds=args.profile_seconds,
            connections=args.connections,
            offset=offset,
            postgres=(exe, pids, pg_ms["app"], worker_pg) if exe else None,
        )
        offset += out[what].get("requests_during_profile", 0) + 1000
        if exe is None:
            out[what]["postgres"] = {
                "skipped": "perf cannot sample here (Debian linux-perf, run as root)"
            }
            continue
        out[what]["postgres_baseline"] = await asyncio.to_thread(
            pgprofile.under_load,
            exe,
            wrk,
            baseline,
            mode,
            file,
            await postgres_pids(db),
            out_dir / f"{stem}-postgres-baseline.collapsed.gz",
            seconds=args.profile_seconds,
            connections=args.connections,
            cpu_ms=pg_ms["baseline"],
            worker=worker_pg,
        )
    return out


async def _through_pgbouncer(
    args: argparse.Namespace,
    db: Database,
    baseline: Any,
    data: Any,
    work: Path,
    *,
    first_filing: int,
) -> dict[str, Any]:
    """The same load with the app (and its worker) behind PgBouncer in
    transaction mode, against the same bare baseline, interleaved as before."""
    if bouncer.binary() is None:
        print("no pgbouncer installed: the PgBouncer run is skipped", flush=True)
        return {"skipped": "pgbouncer is not installed (Debian package pgbouncer)"}
    print("load through PgBouncer (transaction mode)", flush=True)
    pgb = bouncer.start(db.name, work)
    try:
        env = {
            **app_env(db, work),
            "YDT_DATABASE_URL": pgb.url(db.name),
            "YDT_DATABASE_PGBOUNCER": "true",
        }
        app = start_server(
            "app-pgbouncer",
            "app.main:create_app",
            env,
            args.workers,
            work,
            projector=args.projector,
        )
        try:
            # Its own worker's first round (a new hour's checkpoint) stays out of the rounds.
            await asyncio.to_thread(app.worker_settled)
            result = await load.measure(
                db,
                app,
                baseline,
                data,
                **load.shape(args),
                goals={"filing": None, "tracking": None},
                first_filing=first_filing,
            )
        finally:
            app.stop()
    finally:
        pgb.stop()
    result["pool_size"] = bouncer.POOL_SIZE
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"machine": await describe(), "config": _config(args)}
    now = utcnow()
    with tempfile.TemporaryDirectory(prefix="ydt-bench-") as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if {"growth", "load"} - set(args.skip):
            db = await create_database(now)
            try:
                report.update(await _sizes(args, db, work, out_dir, now))
            finally:
                if args.keep_db:
                    print(f"kept the database {db.name}", flush=True)
                else:
                    await drop_database(db)
        if "media" not in args.skip:
            print(f"media memory with a {args.media_mb} MB video", flush=True)
            (work / "media-bench").mkdir()
            report["media"] = {
                "streamed": await asyncio.to_thread(
                    media_memory.measure_streamed, args.media_mb, work / "media-bench"
                ),
                "direct": await asyncio.to_thread(
                    media_memory.measure_direct, args.media_mb, work / "media-bench"
                ),
            }
    report["goals"] = goals(report)
    report["seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / f"{args.name}.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    )
    (out_dir / f"{args.name}.md").write_text(markdown(report))
    return report


async def _sizes(
    args: argparse.Namespace, db: Database, work: Path, out_dir: Path, now: Any
) -> dict[str, Any]:
    loader = Loader(db.dsn, now=now)
    sizes: dict[int, Any] = {}
    result: dict[str, Any] = {}
    for size in args.sizes:
        print(f"loading {size} complaints", flush=True)
        t0 = time.perf_counter()
        data = await loader.grow_to(size)
        data["load_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        data["rebuilt"] = await after_load(db)
        data["vacuum_seconds"] = round(time.perf_counter() - t0, 1)
        app = start_server(
            "app",
            "app.main:create_app",
            app_env(db, work),
            args.workers,
            work,
            projector=args.projector,
        )
        try:
            # Before anything is timed, growth or load: the first round can hold
            # an audit checkpoint over every chain (about 90 s of CPU at 1M).
            data["worker_settle_seconds"] = await asyncio.to_thread(app.worker_settled)
            if "growth" not in args.skip:
                print(f"timing staff reads at {size}", flush=True)
                data["median_ms"] = await asyncio.to_thread(
                    growth.measure,
                    app.url,
                    staff_token(app),
                    rounds=args.growth_rounds,
                    warmup=args.growth_warmup,
                )
            sizes[size] = data
            if size == args.sizes[0] and "embedded" not in args.skip and "load" not in args.skip:
                print(f"embedded (SQLite) filing and tracking at {size}", flush=True)
                result["embedded"] = await embedded.run(args, db, work)
                result["embedded"]["size"] = size
            if size == args.sizes[-1] and "load" not in args.skip:
                print(f"load: filing and tracking at {size}", flush=True)
                result["load"] = await load_stage(args, db, app, work, out_dir)
        finally:
            app.stop()
    if "load" in result:
        result["guarantees"] = result["load"].pop("guarantees")
    result["growth"] = {"sizes": sizes}
    if "growth" not in args.skip and len(sizes) > 1:
        result["growth"].update(growth.ratios({n: d["median_ms"] for n, d in sizes.items()}))
    return result


def _config(args: argparse.Namespace) -> dict[str, Any]:
    keep = [
        "sizes",
        "seconds",
        "warmup",
        "rounds",
        "connections",
        "threads",
        "workers",
        "growth_rounds",
        "growth_warmup",
        "media_mb",
        "profile",
        "profile_seconds",
        "projector",
        "smoke",
    ]
    return {k: getattr(args, k) for k in keep} | {
        "command": " ".join(["python -m bench", *sys.argv[1:]])
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    report = asyncio.run(run(args))
    print((Path(args.out_dir) / f"{args.name}.md").read_text())
    print(f"done in {report['seconds']} s")
    return 0
