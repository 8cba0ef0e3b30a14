"""The machine a result was measured on, stored beside the result.

Absolute times only mean something next to the box, the database settings
and the versions that produced them; ratios travel better, but a reader
still needs to know what was compared.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from tests import support

ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def _os() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def _run(*cmd: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else ""
    )


async def _postgres() -> dict[str, str]:
    conn = await asyncpg.connect(
        host=support.PG_HOST, port=support.PG_PORT, user=support.PG_USER, database="postgres"
    )
    try:
        out = {"version": str(await conn.fetchval("select version()"))}
        for name in ("shared_buffers", "synchronous_commit", "max_connections", "work_mem"):
            out[name] = str(await conn.fetchval(f"show {name}"))
    finally:
        await conn.close()
    return out


async def describe() -> dict[str, Any]:
    dirty = _run("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_gib(),
        "os": _os(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "postgresql": await _postgres(),
        "packages": {
            name: metadata.version(name)
            for name in ("fastapi", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg")
        },
        "wrk": _run("wrk", "-v"),
        "git_commit": _run("git", "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(dirty) and dirty != "unavailable",
    }
