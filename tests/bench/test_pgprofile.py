"""PostgreSQL's side of the bench's profile (bench.pgprofile).

The report turns perf samples into milliseconds per request by bucket; a
sample put in the wrong bucket, or a worker's sample counted as the
request's, would move CPU between lines of the table without anyone
noticing, so the bucketing is checked on stacks shaped like real ones.
"""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pgprofile
from bench.report import _postgres_profile_lines
from tests import support

# `perf script -F pid,ip,sym` of three samples, as Debian's postgres prints them.
SCRIPT = """\
 101
\t          5a5e11 _bt_compare
\t          1b04f9 _bt_first
\t          302a37 index_getnext_slot
\t          32fdc7 [unknown]
\t          330928 SPI_execute_snapshot
\t          31ce59 RI_FKey_check_ins
\t          303ed9 AfterTriggerEndQuery
\t          4803ef PortalRun
\t          47dabf PostgresMain

 101
\t          aa01 iowrite16
\t          aa02 file_write_and_wait_range
\t          aa03 fdatasync
\t          aa04 XLogFlush
\t          aa05 CommitTransactionCommand
\t          47dabf PostgresMain

 202
\t          bb01 heap_insert
\t          bb02 [unknown]
\t          bb03 standard_ExecutorRun
\t          47dabf PostgresMain
"""


def test_samples_are_read_with_their_process_and_frames_leaf_first() -> None:
    samples = list(pgprofile.parse(SCRIPT))
    assert [pid for pid, _ in samples] == [101, 101, 202]
    assert samples[0][1][:2] == ["_bt_compare", "_bt_first"]
    assert samples[1][1][-1] == "PostgresMain"
    assert samples[2][1] == ["heap_insert", "[unknown]", "standard_ExecutorRun", "PostgresMain"]


def test_a_sample_goes_to_the_first_bucket_any_of_its_frames_names() -> None:
    fk, flush, heap = (frames for _, frames in pgprofile.parse(SCRIPT))
    # The foreign-key check's index lookup is the check, not a read.
    assert pgprofile.bucket(fk) == "foreign-key checks"
    assert pgprofile.bucket(flush) == "commit: flushing the WAL to disk"
    assert pgprofile.bucket(heap) == "rows written (heap, TOAST, row locks)"
    assert pgprofile.bucket(["[unknown]", "main"]) == pgprofile.OTHER
    assert pgprofile.bucket([]) == pgprofile.OTHER


def test_milliseconds_per_request_split_the_measured_cpu_and_the_worker_stands_apart() -> None:
    samples = list(pgprofile.parse(SCRIPT))
    out = pgprofile.summarise(samples, 0.9, worker=frozenset({202}))
    assert out["samples"] == 3
    assert out["buckets_ms"] == {
        "foreign-key checks": 0.3,
        "commit: flushing the WAL to disk": 0.3,
        pgprofile.WORKER: 0.3,
    }
    assert sum(out["buckets_pct"].values()) == pytest.approx(100, abs=0.2)
    assert out["self_pct"]["heap_insert"] == pytest.approx(33.3)
    # Without the rounds' CPU figure there are shares only.
    assert "buckets_ms" not in pgprofile.summarise(samples, None)


def test_the_report_sets_the_app_beside_the_baseline() -> None:
    app = pgprofile.summarise(list(pgprofile.parse(SCRIPT)), 0.9, worker=frozenset({202}))
    base = pgprofile.summarise(list(pgprofile.parse(SCRIPT))[1:2], 0.3)
    lines = _postgres_profile_lines("filing", {"postgres": app, "postgres_baseline": base})
    text = "\n".join(lines)
    assert "### Where filing spends PostgreSQL's CPU (perf, 3 samples; the bare baseline 1)" in text
    assert "| commit: flushing the WAL to disk | 0.300 | 0.300 | +0.000 |" in text
    assert "| foreign-key checks | 0.000 | 0.300 | +0.300 |" in text
    assert "| **all** | 0.300 | 0.900 | +0.600 |" in text
    skipped = _postgres_profile_lines("filing", {"postgres": {"skipped": "no perf"}})
    assert skipped[-1] == "PostgreSQL's side of filing was not profiled: no perf."
    assert _postgres_profile_lines("filing", {}) == []


BUSY = """
import asyncio, sys
import asyncpg

async def main():
    conn = await asyncpg.connect(sys.argv[1])
    print(await conn.fetchval("select pg_backend_pid()"), flush=True)
    for _ in range(400):
        await conn.fetchval("select count(*) from generate_series(1, 20000)")

asyncio.run(main())
"""


async def test_a_live_backend_is_sampled_or_the_reason_is_given(tmp_path: Path) -> None:
    """With perf usable here, a busy backend's samples come back bucketed and
    its stacks are kept; without, ``perf()`` says so and the bench reports
    the section as skipped rather than failing."""
    exe = await asyncio.to_thread(pgprofile.perf)
    if exe is None:
        assert _postgres_profile_lines("filing", {"postgres": {"skipped": "x"}})
        return
    if not await support.postgres_available():
        if support.IN_CI:
            pytest.fail("PostgreSQL is mandatory under CI but is not reachable on 127.0.0.1:5432")
        pytest.skip("PostgreSQL not reachable (mandatory under CI=true)")
    dsn = f"postgresql://{support.PG_USER}@{support.PG_HOST}:{support.PG_PORT}/postgres"
    busy = subprocess.Popen([sys.executable, "-c", BUSY, dsn], stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout is not None
        pid = int(busy.stdout.readline())
        # A pid that is gone by now must not spoil the recording of the rest.
        proc = pgprofile.start(exe, [pid, 2**22 + 7], tmp_path / "x.perf", 1)
        out = await asyncio.to_thread(
            pgprofile.finish, exe, proc, tmp_path / "x.perf", tmp_path / "x.collapsed.gz", 0.5
        )
    finally:
        busy.kill()
        busy.wait()
    assert "samples" in out and out["samples"] > 0, out
    assert sum(out["buckets_ms"].values()) == pytest.approx(0.5, abs=0.01)
    stacks = gzip.decompress((tmp_path / "x.collapsed.gz").read_bytes()).decode()
    assert "PostgresMain" in stacks
    assert not (tmp_path / "x.perf").exists()
