"""A seconds-long run of the whole benchmark so it cannot rot.

It checks that `python -m bench --smoke` starts what it needs, drives every
scenario and writes its results with the expected keys, and that every
request it sent was answered with success. Nothing about timing is asserted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import support

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_runs_end_to_end(tmp_path: Path) -> None:
    if not asyncio.run(support.postgres_available()):
        if support.IN_CI:
            pytest.fail("PostgreSQL is mandatory under CI but is not reachable on 127.0.0.1:5432")
        pytest.skip("PostgreSQL not reachable (mandatory under CI=true)")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        timeout=600,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert {"machine", "config", "growth", "load", "media", "goals", "embedded", "guarantees"} <= (
        set(report)
    )
    assert {"date", "cpu_model", "cores", "memory_gib", "python", "postgresql"} <= set(
        report["machine"]
    )

    for what in ("filing", "tracking"):
        result = report["load"][what]
        assert {"ratio", "goal", "met", "baseline", "app"} <= set(result)
        for side in ("baseline", "app"):
            measured = result[side]
            assert {"rps", "p50_ms", "p99_ms", "postgres_backends"} <= set(measured)
            assert measured["rps"] > 0
            # Every filing and every read was accepted: tokens, bodies,
            # Idempotency-Keys and rate limits are all right.
            assert measured["non_2xx"] == 0
        # The worker's share, in its own process and in the backends serving it.
        app_side = result["app"]
        assert app_side["worker_postgres_cpu_ms_per_request"] >= 0
        assert app_side["worker_cpu_ms_per_request"] >= 0
    assert "its `ydt worker` (the statistics projector" in (tmp_path / "smoke.md").read_text()

    # The same load through PgBouncer in transaction mode (Debian's package;
    # scripts/test.sh installs it, and CI must run it).
    through = report["load"]["pgbouncer"]
    if "skipped" in through:
        assert not support.IN_CI, through["skipped"]
    else:
        for what in ("filing", "tracking"):
            for side in ("baseline", "app"):
                assert through[what][side]["rps"] > 0 and through[what][side]["non_2xx"] == 0
        assert "Through PgBouncer (transaction mode" in (tmp_path / "smoke.md").read_text()

    # The embedded default (SQLite, one worker) against bare aiosqlite.
    for what in ("filing", "tracking"):
        result = report["embedded"][what]
        assert {"ratio", "baseline", "app", "p99_vs_baseline"} <= set(result)
        for side in ("baseline", "app"):
            assert result[side]["rps"] > 0 and result[side]["non_2xx"] == 0
    # Served where its own WeChat stand-in answers: nothing measured a failing call.
    assert report["embedded"]["text_checks_deferred"] == 0

    # Every guarantee the fast paths must keep, checked by the run itself.
    checks = report["guarantees"]["checks"]
    assert len(checks) >= 9
    failed = [c for c in checks if not c["ok"]]
    assert not failed, failed

    growth = report["growth"]
    assert len(growth["sizes"]) == 2
    assert {"queue_first_page", "queue_next_page", "overview", "rankings"} <= set(growth["ratio"])
    assert "taxonomy_suggest" in growth["ratio"]
    first = growth["sizes"][str(min(int(n) for n in growth["sizes"]))]
    assert first["events"] > first["complaints"]  # every case carries its event chain

    media = report["media"]
    assert media["streamed"]["stored_bytes"] == 4 * 1024 * 1024
    assert media["direct"]["stored_size"] == 4 * 1024 * 1024
    # The direct upload's bytes never pass through the app process.
    assert media["direct"]["app_bytes_read_during_upload"] < 1024 * 1024

    assert [g["goal"] for g in report["goals"]]
    assert (tmp_path / "smoke.md").read_text().startswith("# Benchmark results")
