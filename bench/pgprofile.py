"""Where PostgreSQL's CPU goes under load: ``perf`` on the database's processes.

py-spy (bench.profile) shows the app's side of a filing. The other third of
its CPU is PostgreSQL's, and the app's profile cannot say what that pays
for. While wrk drives a scenario, ``perf record -g`` samples this database's
backends and the shared writers (``servers.postgres_pids``); each sample's
stack is put in one bucket of what the server was doing (the first of
``BUCKETS`` any of its frames names), so the report can say, per request, how
much went to the commit's WAL flush, to index entries, to foreign-key checks,
to setting up the plan, and so on, for the app and for the bare baseline
side by side.

Debian's ``postgres`` binary is stripped of its static functions but keeps
the exported ones, which is every name used below. Without ``perf`` (Debian
``linux-perf``) or the right to use it (root, or
``kernel.perf_event_paranoid`` <= 1), the section says why and is skipped.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# (bucket, the frames that put a sample in it), tried in this order: a
# foreign-key check's index lookup is a foreign-key check, not a read; the
# commit's WAL flush is the commit, whichever statement's end it follows.
BUCKETS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "background writers (WAL writer, checkpointer, autovacuum)",
        frozenset(
            {
                "WalWriterMain",
                "CheckpointerMain",
                "BackgroundWriterMain",
                "AutoVacWorkerMain",
                "AutoVacLauncherMain",
            }
        ),
    ),
    ("commit: flushing the WAL to disk", frozenset({"XLogFlush"})),
    (
        "foreign-key checks",
        frozenset({"RI_FKey_check_ins", "RI_FKey_check_upd", "SPI_execute_snapshot"}),
    ),
    ("row triggers (PL/pgSQL)", frozenset({"plpgsql_call_handler", "plpgsql_exec_trigger"})),
    ("check constraints", frozenset({"ExecConstraints"})),
    ("index entries", frozenset({"ExecInsertIndexTuples", "btinsert", "index_insert"})),
    (
        "rows written (heap, TOAST, row locks)",
        frozenset(
            {
                "heap_insert",
                "heap_multi_insert",
                "heap_update",
                "heap_delete",
                "heap_lock_tuple",
                "heap_toast_insert_or_update",
            }
        ),
    ),
    (
        "parse, analyse, plan",
        frozenset(
            {
                "pg_parse_query",
                "raw_parser",
                "parse_analyze_fixedparams",
                "parse_analyze_varparams",
                "pg_analyze_and_rewrite_fixedparams",
                "pg_analyze_and_rewrite_varparams",
                "pg_plan_queries",
                "standard_planner",
                "GetCachedPlan",
                "RevalidateCachedQuery",
                "CompleteCachedPlan",
            }
        ),
    ),
    (
        "setting up and tearing down each execution's plan",
        frozenset({"standard_ExecutorStart", "standard_ExecutorEnd", "FreeExecutorState"}),
    ),
    (
        "parameters in (binary and text decoding)",
        frozenset({"OidReceiveFunctionCall", "ReceiveFunctionCall", "OidInputFunctionCall"}),
    ),
    (
        "reads (scans, index lookups)",
        frozenset({"ExecScan", "index_getnext_slot", "index_fetch_heap", "_bt_first"}),
    ),
    (
        "talking to the client (socket, protocol)",
        frozenset(
            {
                "secure_read",
                "secure_write",
                "pq_getbyte",
                "pq_getmessage",
                "pq_flush",
                "printtup",
                "pq_endmessage",
                "__send",
                "__libc_recv",
                "tcp_sendmsg",
                "tcp_recvmsg",
                "sock_def_readable",
            }
        ),
    ),
    (
        "transaction start and end (other than the flush)",
        frozenset({"CommitTransactionCommand", "StartTransactionCommand"}),
    ),
    ("executor (other)", frozenset({"standard_ExecutorRun", "standard_ExecutorFinish"})),
)
OTHER = "other"
WORKER = "serving the statistics projector (the worker's backends)"


def perf() -> str | None:
    """The perf binary, if it exists and may sample other processes here."""
    exe = shutil.which("perf")
    if exe is None:
        return None
    try:
        probe = subprocess.run(
            [exe, "record", "-q", "-o", "/dev/null", "--", "true"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if probe.returncode == 0 else None


def start(exe: str, pids: Iterable[int], out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Sample ``pids`` with call stacks for ``seconds`` (returns at once).

    perf refuses the whole list if one process is gone, so only live ones
    are named (a backend that exits during the recording is merely lost)."""
    live = sorted(p for p in set(pids) if Path(f"/proc/{p}").exists())
    return subprocess.Popen(
        [
            exe,
            "record",
            "-q",
            "-F",
            "499",
            "-g",
            "-o",
            str(out),
            "-p",
            ",".join(str(p) for p in live),
            "--",
            "sleep",
            str(max(1, round(seconds))),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(
    exe: str,
    proc: subprocess.Popen[bytes],
    data: Path,
    collapsed: Path,
    cpu_ms: float | None,
    worker: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """Wait for ``start``'s recording, summarise it, keep its stacks gzipped."""
    _, err = proc.communicate()
    # perf ends early, and not with 0, when every process it follows has
    # exited; what it wrote up to then is still a recording.
    if not data.exists() or data.stat().st_size == 0:
        return {"skipped": f"perf record failed: {err.decode(errors='replace')[-300:].strip()}"}
    script = subprocess.run(
        [exe, "script", "-i", str(data), "-F", "pid,ip,sym"],
        capture_output=True,
        check=False,
    )
    data.unlink(missing_ok=True)
    samples = list(parse(script.stdout.decode(errors="replace")))
    counts = Counter(";".join(reversed(frames)) for _, frames in samples)
    collapsed.write_bytes(
        gzip.compress("".join(f"{k} {v}\n" for k, v in counts.most_common()).encode())
    )
    summary = summarise(samples, cpu_ms, worker)
    summary["collapsed_stacks"] = collapsed.name
    return summary


def parse(text: str) -> Iterator[tuple[int, list[str]]]:
    """(pid, frames leaf first) per sample, from ``perf script -F pid,ip,sym``:
    a line with the pid, then one "address symbol" line per frame (indented),
    a blank line between samples."""
    pid, frames = 0, []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            if frames:
                yield pid, frames
            pid, frames = 0, []
        elif not frames and stripped.isdigit():
            pid = int(stripped)
        else:
            parts = stripped.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "[unknown]")
    if frames:
        yield pid, frames


def bucket(frames: list[str]) -> str:
    names = set(frames)
    for name, marks in BUCKETS:
        if names & marks:
            return name
    return OTHER


def summarise(
    samples: list[tuple[int, list[str]]],
    cpu_ms: float | None,
    worker: frozenset[int] = frozenset(),
    top: int = 12,
) -> dict[str, Any]:
    """Each bucket's share of the samples and, given PostgreSQL's measured
    CPU per request (``cpu_ms``), its milliseconds per request; the top
    frames. Samples of the backends in ``worker`` are one bucket of their own,
    so the request's buckets are the request's."""
    buckets: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for pid, frames in samples:
        buckets[WORKER if pid in worker else bucket(frames)] += 1
        leaf[frames[0]] += 1
    total = len(samples)
    pct = 100 / total if total else 0.0
    out: dict[str, Any] = {
        "samples": total,
        "buckets_pct": {k: round(v * pct, 1) for k, v in buckets.most_common()},
        "self_pct": {k: round(v * pct, 1) for k, v in leaf.most_common(top)},
    }
    if cpu_ms is not None and total:
        out["cpu_ms_per_request"] = cpu_ms
        out["buckets_ms"] = {k: round(cpu_ms * v / total, 3) for k, v in buckets.most_common()}
    return out


def under_load(
    exe: str,
    wrk: str,
    server: Any,
    mode: str,
    data: Path,
    pids: list[int],
    collapsed: Path,
    *,
    seconds: float,
    connections: int,
    cpu_ms: float | None,
    worker: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """PostgreSQL's profile while wrk drives ``server`` (the bare baseline,
    which has no Python profile of its own to take)."""
    from bench.load import profile_load

    data_file = collapsed.with_name(collapsed.name.split(".")[0] + ".perf")
    proc = start(exe, pids, data_file, seconds)
    profile_load(wrk, server, mode, data, seconds=seconds, connections=connections, offset=0)
    return finish(exe, proc, data_file, collapsed, cpu_ms, worker)
