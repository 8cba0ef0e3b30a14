"""Price a filing (or a tracking read) in process, to a tenth of a millisecond.

    python -m bench.inproc                          # 1,500 filings x 4, the app as it is
    python -m bench.inproc --variant scratch.py     # the same, interleaved with a variant
    python -m bench.inproc --cprofile out.prof      # one more round under cProfile
    python -m bench.inproc --smoke                  # seconds; what CI runs

Why this exists beside ``python -m bench``: on this shared two-core machine a
wrk round swings by a tenth of its throughput, so a change worth 0.05 ms a
filing cannot be seen there. Here one app (``create_app``, the bench's
production settings, the projector left to a worker that is not started) is
driven through its ASGI callable with no server and no sockets between, and
what a filing costs is read as CPU: the app's from ``time.process_time``,
PostgreSQL's from ``/proc`` for this database's backends and the shared
writers. Rounds of each variant are interleaved with rounds of the app as it
is, so a machine that slows down slows both, and medians are compared.

A variant is a Python file defining ``apply() -> Callable[[], None]``: it
changes something in the running process (a monkeypatch, a setting, a
constraint dropped in the database it is given through ``YDT_DATABASE_URL``)
and returns what undoes it. Variants are scratch work and are not committed;
the committed part is the method.

Every request must be answered 201 (filing) or 200 (tracking): a variant
that breaks the filing is reported as an error, not as a saving.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.datagen import Loader  # noqa: E402
from bench.servers import (  # noqa: E402
    Database,
    after_load,
    app_env,
    cpu_by_pid,
    cpu_spent,
    create_database,
    drop_database,
    postgres_pids,
    utcnow,
)

SMOKE = {"complaints": 300, "requests": 40, "rounds": 1, "concurrency": 4}

Row = tuple[list[tuple[bytes, bytes]], tuple[str, int], str, bytes]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__.split("\n")[0])
    p.add_argument("--what", choices=["file", "track"], default="file")
    p.add_argument("--complaints", type=int, default=10_000, help="generated history")
    p.add_argument("--requests", type=int, default=1_500, help="requests per round")
    p.add_argument("--rounds", type=int, default=4, help="rounds per variant (median kept)")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    p.add_argument("--variant", action="append", default=[], help="a file defining apply()")
    p.add_argument("--cprofile", help="write one more reference round's profile here")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one round")
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return args


def load_variant(path: str) -> Callable[[], Callable[[], None]]:
    spec = importlib.util.spec_from_file_location(f"variant_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the variant {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    apply = getattr(module, "apply", None)
    if not callable(apply):
        raise SystemExit(f"{path} defines no apply()")
    return apply  # type: ignore[no-any-return]


def read_rows(path: Path, what: str) -> list[Row]:
    """The wrk load file's lines as ASGI request parts (bench/wrk/requests.lua)."""
    rows: list[Row] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        token, ip, payload = line.split("\t", 2)
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
        ]
        if what == "file":
            body = payload.encode()
            headers.append((b"content-length", str(len(body)).encode()))
            rows.append((headers, (ip, 40000), "/api/v1/complaints", body))
        else:
            rows.append((headers, (ip, 40000), f"/api/v1/complaints/{payload}", b""))
    return rows


async def call(app: Any, row: Row, method: str, key: str | None) -> int:
    """One request through the ASGI callable, as uvicorn would hand it over."""
    headers, client, path, body = row
    if key is not None:
        headers = [*headers, (b"idempotency-key", key.encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": client,
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def one_round(
    app: Any, rows: list[Row], what: str, concurrency: int, tag: str
) -> dict[int, int]:
    """Send ``rows`` with ``concurrency`` in flight; status -> count."""
    method, ok = ("POST", 201) if what == "file" else ("GET", 200)
    statuses: dict[int, int] = {}
    queue = iter(enumerate(rows))

    async def lane() -> None:
        for i, row in queue:
            status = await call(app, row, method, f"{tag}-{i}" if what == "file" else None)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    if set(statuses) != {ok}:
        print(f"  {tag}: statuses {statuses}", flush=True)
    return statuses


async def measure(args: argparse.Namespace, db: Database, work: Path) -> dict[str, Any]:
    variants = [(Path(v).stem, load_variant(v)) for v in args.variant]
    names = ["reference", *(name for name, _ in variants)]
    extra = 1 if args.cprofile else 0
    per_round = args.requests
    total = per_round * (args.rounds * len(names) + extra + 1)  # +1: the warm-up round
    now = utcnow()
    data = await load.prepare(db, work, total if args.what == "file" else 50, total, now)
    rows = read_rows(data.filing if args.what == "file" else data.tracking, args.what)
    if args.what == "track":  # a few thousand owners' cases, read over and over
        rows = (rows * (total // max(len(rows), 1) + 1))[:total]

    os.environ.update(app_env(db, work))
    os.environ["YDT_PROJECTOR_IN_APP"] = "false"
    from app.core.config import Settings
    from app.main import create_app

    app = create_app(Settings())
    # The log lines are written as a server writes them, to a file here.
    log = (work / "inproc-app.log").open("a", encoding="utf-8")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log)

    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    statuses: dict[str, dict[int, int]] = {name: {} for name in names}
    pg = await postgres_pids(db)
    offset = 0

    def take() -> list[Row]:
        nonlocal offset
        chunk = rows[offset : offset + per_round]
        offset += per_round
        return chunk

    async with app.router.lifespan_context(app):
        await one_round(app, take(), args.what, args.concurrency, "warm")
        for r in range(args.rounds):
            for name in names:
                undo = dict(variants)[name]() if name != "reference" else None
                try:
                    pg = sorted(set(pg) | set(await postgres_pids(db)))
                    pg_before = cpu_by_pid(pg)
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    got = await one_round(app, take(), args.what, args.concurrency, f"{name}-{r}")
                    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                    pg_cpu = cpu_spent(pg_before, sorted(set(pg) | set(await postgres_pids(db))))
                finally:
                    if undo is not None:
                        undo()
                for status, count in got.items():
                    statuses[name][status] = statuses[name].get(status, 0) + count
                results[name].append(
                    {
                        "app_ms": 1000 * cpu / per_round,
                        "postgres_ms": 1000 * pg_cpu / per_round,
                        "wall_ms": 1000 * wall / per_round,
                    }
                )
                print(
                    f"  {name} round {r}: app {results[name][-1]['app_ms']:.3f} ms, "
                    f"postgres {results[name][-1]['postgres_ms']:.3f} ms per request",
                    flush=True,
                )
        if args.cprofile:
            profiler = cProfile.Profile()
            profiler.enable()
            await one_round(app, take(), args.what, args.concurrency, "profiled")
            profiler.disable()
            profiler.dump_stats(args.cprofile)
    log.close()

    def med(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in results[name]), 4)

    summary: dict[str, Any] = {
        "what": args.what,
        "complaints": args.complaints,
        "requests_per_round": per_round,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "variants": {},
    }
    for name in names:
        app_ms, pg_ms = med(name, "app_ms"), med(name, "postgres_ms")
        entry: dict[str, Any] = {
            "app_ms": app_ms,
            "postgres_ms": pg_ms,
            "together_ms": round(app_ms + pg_ms, 4),
            "wall_ms": med(name, "wall_ms"),
            "statuses": {str(k): v for k, v in sorted(statuses[name].items())},
            "rounds": results[name],
        }
        if name != "reference":
            ref = summary["variants"]["reference"]
            entry["delta_ms"] = round(entry["together_ms"] - ref["together_ms"], 4)
        summary["variants"][name] = entry
    return summary


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ydt-inproc-") as tmp:
        work = Path(tmp)
        (work / "media").mkdir()
        db = await create_database(utcnow())
        try:
            print(f"loading {args.complaints} complaints", flush=True)
            await Loader(db.dsn, now=utcnow()).grow_to(args.complaints)
            await after_load(db)
            return await measure(args, db, work)
        finally:
            await drop_database(db)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # uvloop where installed, as uvicorn's default loop ("auto") serves the app.
    try:
        import uvloop
    except ImportError:
        summary = asyncio.run(run(args))
    else:
        summary = uvloop.run(run(args))
    print(f"{'variant':<24} {'app':>8} {'postgres':>9} {'together':>9} {'delta':>8}  statuses")
    for name, v in summary["variants"].items():
        delta = f"{v['delta_ms']:+.3f}" if "delta_ms" in v else ""
        print(
            f"{name:<24} {v['app_ms']:>8.3f} {v['postgres_ms']:>9.3f} "
            f"{v['together_ms']:>9.3f} {delta:>8}  {v['statuses']}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    ok = "201" if args.what == "file" else "200"
    failed = any(set(v["statuses"]) != {ok} for v in summary["variants"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
