"""Where the app's CPU goes under load: py-spy on the live uvicorn workers.

wrk drives one scenario while `py-spy record --subprocesses` samples every
worker; the collapsed stacks are kept in bench/results/ and summarised as
the share of samples spent inside each function (inclusive) and at the top
of the stack (self). Only the app's CPU shows here: time waiting on
PostgreSQL is idle and not sampled, which is what a CPU-bound 2-core box needs.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench import pgprofile
from bench.load import profile_load
from bench.servers import Server


def py_spy() -> str | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return exe if Path(exe).exists() else None


def record(
    wrk: str,
    server: Server,
    mode: str,
    data: Path,
    out: Path,
    *,
    seconds: float,
    connections: int,
    offset: int,
    postgres: tuple[str, list[int], float | None, frozenset[int]] | None = None,
) -> dict[str, Any]:
    """py-spy on the app's workers under wrk; with ``postgres`` (perf, the
    database's pids, its CPU per request from the rounds, the ``ydt worker``'s
    backends) also perf on PostgreSQL over the same seconds (bench.pgprofile)."""
    spy = py_spy()
    if spy is None:
        return {"skipped": "py-spy not installed (pip install -e '.[bench]')"}
    load: dict[str, Any] = {}

    def drive() -> None:
        load.update(
            profile_load(
                wrk, server, mode, data, seconds=seconds, connections=connections, offset=offset
            )
        )

    pg_data = out.with_name(out.name.replace(".collapsed", "-postgres.perf"))
    perf = pgprofile.start(postgres[0], postgres[1], pg_data, seconds) if postgres else None
    driver = threading.Thread(target=drive)
    driver.start()
    subprocess.run(
        [
            spy,
            "record",
            "--pid",
            str(server.proc.pid),
            "--subprocesses",
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    driver.join()
    summary = summarise(out)
    if postgres and perf is not None:
        summary["postgres"] = pgprofile.finish(
            postgres[0],
            perf,
            pg_data,
            out.with_name(out.name.replace(".collapsed", "-postgres.collapsed.gz")),
            postgres[2],
            postgres[3],
        )
    summary["requests_during_profile"] = load.get("requests", 0)
    packed = out.with_name(out.name + ".gz")
    packed.write_bytes(gzip.compress(out.read_bytes()))
    out.unlink()
    summary["collapsed_stacks"] = packed.name  # flamegraph.pl or speedscope read these
    return summary


FRAME = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(raw: str) -> tuple[str, str]:
    """("function", "path/in/package.py") from py-spy's "function (path:line)"."""
    m = FRAME.match(raw.strip())
    if not m:
        return raw.strip()[:60], "?"
    return m["fn"], m["file"]


def stacks(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """Collapsed stacks; a frame's name may span lines (code made by eval)."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        buf = f"{buf}\n{line}" if buf else line
        m = re.search(r" (\d+)$", buf)
        if not m:
            continue
        frames = [_frame(f) for f in buf[: m.start()].split(";") if not f.startswith("process ")]
        out.append((frames, int(m[1])))
        buf = ""
    return out


def summarise(path: Path, top: int = 25) -> dict[str, Any]:
    """Shares of the CPU samples: per function of the app (inclusive), per
    library where the CPU was actually spent (the top frame), and the top
    frames themselves."""
    app: Counter[str] = Counter()
    library: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for frames, n in stacks(path):
        if not frames:
            continue
        total += n
        fn, file = frames[-1]
        library[file.split("/")[0] if "/" in file else file] += n
        leaf[f"{fn} ({file})"] += n
        for f in {f"{fn} ({file})" for fn, file in frames if file.startswith("app/")}:
            app[f] += n
    pct = 100 / total if total else 0
    return {
        "samples": total,
        "app_inclusive_pct": {k: round(v * pct, 1) for k, v in app.most_common(top)},
        "library_self_pct": {k: round(v * pct, 1) for k, v in library.most_common(12)},
        "self_pct": {k: round(v * pct, 1) for k, v in leaf.most_common(top)},
    }
