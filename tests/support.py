"""Helpers the fixtures use: free ports, a moto S3 server, database set-up."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command

from app.cli import alembic_config

PG_HOST = os.environ.get("YDT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("YDT_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("YDT_TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class S3Server:
    endpoint: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_moto(log_dir: Path) -> S3Server:
    port = free_port()
    log = (log_dir / f"moto-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    try:
        wait_for_port(port, timeout=30)
    except RuntimeError:
        proc.kill()
        raise
    return S3Server(endpoint=f"127.0.0.1:{port}", port=port, process=proc)


S3RVER_KEY = "S3RVER"  # s3rver's built-in access key and secret


def s3rver_binary() -> str | None:
    """s3rver (npm; a second S3 server beside moto): YDT_TEST_S3RVER, PATH, or
    the copy scripts/test.sh installs under .tools/."""
    here = Path(__file__).resolve().parent.parent / ".tools" / "node_modules" / ".bin" / "s3rver"
    for candidate in (os.environ.get("YDT_TEST_S3RVER"), shutil.which("s3rver"), str(here)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def start_s3rver(binary: str, log_dir: Path) -> S3Server:
    port = free_port()
    data = log_dir / f"s3rver-{port}"
    data.mkdir()
    log = (log_dir / f"s3rver-{port}.log").open("wb")
    proc = subprocess.Popen(
        [binary, "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
    except RuntimeError:
        proc.kill()
        raise
    return S3Server(endpoint=f"127.0.0.1:{port}", port=port, process=proc)


async def postgres_available() -> bool:
    try:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=3
        )
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def create_pg_database() -> tuple[str, str]:
    """A fresh database per test run, so parallel runs and leftovers never clash."""
    name = f"ydt_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def alembic_upgrade(url: str, revision: str = "head") -> None:
    cfg = alembic_config(url)
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, revision)


def alembic_downgrade(url: str, revision: str = "base") -> None:
    cfg = alembic_config(url)
    cfg.attributes["configure_logger"] = False
    command.downgrade(cfg, revision)


def api_routes(app: Any) -> list[tuple[str, Any]]:
    """Every (full path, APIRoute) of an app. This FastAPI keeps included
    routers as ``_IncludedRouter`` entries, so ``app.routes`` alone lists none
    of them; its ``iter_route_contexts`` walks them with their full paths."""
    from fastapi import routing

    walk = getattr(routing, "iter_route_contexts", None)
    if walk is None:
        return [(r.path, r) for r in app.routes if isinstance(r, routing.APIRoute)]
    return [(c.path, c.route) for c in walk(app.routes) if isinstance(c.route, routing.APIRoute)]
