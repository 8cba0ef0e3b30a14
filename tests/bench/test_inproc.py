"""The in-process pricing harness (bench/inproc.py) runs, and tells a
variant that breaks the filing from one that changes nothing.

It asserts what the harness reports, never how fast anything was."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import support

ROOT = Path(__file__).resolve().parents[2]

UNCHANGED = """
def apply():
    return lambda: None
"""

# Every filing refused for its token: the harness must report the 401s and
# fail, not count a broken filing as a cheaper one.
BROKEN = """
from app.core import security
from app.core.errors import Unauthorized

def apply():
    kept = security.TokenService.decode

    def refuse(self, *args, **kwargs):
        raise Unauthorized("variant: every token refused")

    security.TokenService.decode = refuse
    return lambda: setattr(security.TokenService, "decode", kept)
"""


def _run(tmp_path: Path, *variants: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    if not asyncio.run(support.postgres_available()):
        if support.IN_CI:
            pytest.fail("PostgreSQL is mandatory under CI but is not reachable on 127.0.0.1:5432")
        pytest.skip("PostgreSQL not reachable (mandatory under CI=true)")
    args = [sys.executable, "-m", "bench.inproc", "--smoke", "--out", str(tmp_path / "out.json")]
    for i, source in enumerate(variants):
        path = tmp_path / f"v{i}.py"
        path.write_text(source)
        args += ["--variant", str(path)]
    done = subprocess.run(args, cwd=ROOT, timeout=600, capture_output=True, text=True)
    return done, json.loads((tmp_path / "out.json").read_text())


def test_the_harness_prices_the_app_and_an_unchanged_variant(tmp_path: Path) -> None:
    done, report = _run(tmp_path, UNCHANGED)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert set(report["variants"]) == {"reference", "v0"}
    for name, v in report["variants"].items():
        assert v["statuses"] == {"201": report["requests_per_round"] * report["rounds"]}, name
        # CPU was seen on both sides: the app's and its database's.
        assert v["app_ms"] > 0 and v["postgres_ms"] > 0
        assert v["together_ms"] == pytest.approx(v["app_ms"] + v["postgres_ms"], abs=1e-3)
    assert "delta_ms" in report["variants"]["v0"]
    assert "delta_ms" not in report["variants"]["reference"]


def test_a_variant_that_breaks_the_filing_fails_the_run(tmp_path: Path) -> None:
    done, report = _run(tmp_path, BROKEN)
    assert done.returncode == 1
    assert report["variants"]["reference"]["statuses"] == {"201": report["requests_per_round"]}
    assert report["variants"]["v0"]["statuses"] == {"401": report["requests_per_round"]}
