"""The ydt commands operators run, as subprocesses on a scratch SQLite database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ydt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_seed_demo_worker_and_audit(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = {
        **os.environ,
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "YDT_MEDIA_DIR": str(tmp_path / "m"),
        "YDT_SECRET_FILE": str(tmp_path / "s"),
        "YDT_KEY_DIR": str(tmp_path / "keys"),
        "YDT_LOG_LEVEL": "WARNING",
    }
    assert ydt(env, "migrate").returncode == 0
    first = ydt(env, "seed")
    assert first.returncode == 0 and "inserted  517" in first.stdout
    second = ydt(env, "seed")
    assert "inserted    0" in second.stdout and "updated    0" in second.stdout
    demo = ydt(env, "demo")
    assert demo.returncode == 0 and "fengbei.zhang" in demo.stdout
    worked = ydt({**env, "YDT_LOG_LEVEL": "INFO"}, "worker", "--once")
    assert worked.returncode == 0
    lines = (worked.stdout + worked.stderr).splitlines()
    tick = next(json.loads(line) for line in lines if '"msg": "worker tick"' in line)
    assert tick["checkpoint"] == 1 and isinstance(tick["seconds"], float)  # how long it took
    ok = ydt(env, "audit", "verify")
    assert ok.returncode == 0 and "all event chains intact" in ok.stdout
    assert ydt(env, "media", "cleanup").returncode == 0
    bad = ydt(env, "create-staff", "--username", "x", "--password", "weak", "--role", "admin")
    assert bad.returncode == 2 and "username" in bad.stderr and "Traceback" not in bad.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from items").fetchone()[0] == 517


def test_postgres_url_without_secret_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, "YDT_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/none"}
    env.pop("YDT_JWT_SECRET", None)
    result = ydt(env, "serve", "--port", "1")
    assert result.returncode == 2 and "YDT_JWT_SECRET is not set" in result.stderr


@pytest.mark.parametrize(
    ("workers", "explicit", "each"),
    [(1, None, "2"), (2, None, "1"), (8, None, "1"), (2, "3", "3"), (1, "1", "1")],
)
def test_serve_shares_two_filing_turns_among_its_workers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    explicit: str | None,
    each: str,
) -> None:
    """What each process uvicorn starts reads from the environment; uvicorn
    itself is not started (its ``run`` records the environment it was handed)."""
    import uvicorn

    from app import cli
    from app.core.config import get_settings

    monkeypatch.setenv("YDT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.setenv("YDT_SECRET_FILE", str(tmp_path / "s"))
    monkeypatch.setenv("YDT_KEY_DIR", str(tmp_path / "keys"))
    # Set, then unset: so the test's end takes away what serve puts in the
    # environment (a var that was absent is not restored by delenv alone).
    for name in ("YDT_PUBLIC_BASE_URL", "YDT_FILING_STATEMENTS_IN_FLIGHT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    if explicit is not None:
        monkeypatch.setenv("YDT_FILING_STATEMENTS_IN_FLIGHT", explicit)
    seen: dict[str, object] = {}

    def run(*_args: object, **kwargs: object) -> None:
        seen["workers"] = kwargs["workers"]
        seen["each"] = os.environ.get("YDT_FILING_STATEMENTS_IN_FLIGHT")

    monkeypatch.setattr(uvicorn, "run", run)
    get_settings.cache_clear()
    try:
        assert cli.main(["serve", "--port", "1", "--workers", str(workers)]) == 0
        assert seen == {"workers": workers, "each": each}
        assert get_settings().filing_statements_in_flight == int(each)
    finally:
        get_settings.cache_clear()
