"""A seconds-long run of the media benchmark so it cannot rot (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_media_memory_bench_runs(tmp_path: Path) -> None:
    out = tmp_path / "media.json"
    subprocess.run(
        [sys.executable, "-m", "bench.media_memory", "--mb", "4", "--out", str(out)],
        cwd=ROOT,
        check=True,
        timeout=180,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["streamed"]["stored_bytes"] == 4 * 1024 * 1024
    assert result["direct"]["stored_size"] == 4 * 1024 * 1024
    # The direct upload's bytes never pass through the app process.
    assert result["direct"]["app_bytes_read_during_upload"] < 1024 * 1024
