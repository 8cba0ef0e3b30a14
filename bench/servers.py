"""What the runner starts and stops: databases and uvicorn servers.

Servers are real subprocesses on free loopback ports, so the load driver, the
app and PostgreSQL compete for the same two cores as they would in a small
deployment, and CPU can be read per process from /proc.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine
from app.models.enums import StaffRole
from app.reference import service as reference_service
from app.staff import service as staff_service
from app.staff.schemas import StaffCreate
from bench import keys as bench_keys
from tests import support
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"username": "bench.admin", "password": "Bench#2026x"}
JWT_SECRET = "bench-jwt-secret-0123456789abcdefghij"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Database:
    name: str
    url: str  # SQLAlchemy URL, as YDT_DATABASE_URL takes it

    @property
    def dsn(self) -> str:
        return self.url.replace("postgresql+asyncpg", "postgresql")


async def create_database(now: datetime) -> Database:
    """A fresh database at the app's schema (alembic head), seeded, with an admin."""
    name = f"ydt_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(
        host=support.PG_HOST, port=support.PG_PORT, user=support.PG_USER, database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = f"postgresql+asyncpg://{support.PG_USER}@{support.PG_HOST}:{support.PG_PORT}/{name}"
    db = Database(name, url)
    await asyncio.to_thread(support.alembic_upgrade, url)
    engine = create_engine(make_settings(database_url=url), url=url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await reference_service.seed(s, now=now)
            await staff_service.create_staff(
                s,
                StaffCreate(
                    username=ADMIN["username"],
                    password=ADMIN["password"],
                    role=StaffRole.admin,
                    display_name="bench",
                ),
                now=now,
            )
            await s.commit()
    finally:
        await engine.dispose()
    return db


async def after_load(db: Database) -> list[str]:
    """Rebuild the present-state rollup (open cases by due day) with the app's
    own code, then fold past days as the worker does once a day, and count
    the class-case window as the projector does when the day turns, so the
    growth timings read the tables a running deployment would have."""
    from app.stats import recent, rollup

    engine = create_engine(make_settings(database_url=db.url), url=db.url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await rollup.rebuild_open_due(s)
            await rollup.compact_open_due(s, rollup.local_date(utcnow()))
            await recent.recount(s, rollup.local_date(utcnow()))
            await s.commit()
    finally:
        await engine.dispose()
    done = ["rebuild_open_due", "compact_open_due", "recount_recent_clusters"]
    conn = await asyncpg.connect(db.dsn)
    try:
        await conn.execute("vacuum analyze")
    finally:
        await conn.close()
    return done


async def drop_database(db: Database) -> None:
    await support.drop_pg_database(db.name)


def app_env(db: Database, work: Path) -> dict[str, str]:
    """The app as deployed: production settings, PostgreSQL, the default
    database-backed rate-limit store (no Redis), INFO logs to a file."""
    return {
        "YDT_ENV": "production",
        "YDT_DATABASE_URL": db.url,
        "YDT_JWT_SECRET": JWT_SECRET,
        **bench_keys.ENV,
        "YDT_STORAGE": "local",
        "YDT_MEDIA_DIR": str(work / "media"),
        "YDT_LOG_LEVEL": "INFO",
        "YDT_PUBLIC_BASE_URL": "http://127.0.0.1",
        # Both servers' pools, two workers each, must fit the local server's
        # max_connections (100) beside the baseline's and other databases'.
        "YDT_DATABASE_POOL_SIZE": "12",
    }


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float = field(default_factory=time.monotonic)
    # `ydt worker` beside the app, as deployed (scripts/run.sh): it runs the
    # statistics projector; its CPU counts as the app's.
    worker: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The uvicorn supervisor and its worker processes (and `ydt worker`)."""
        extra = [self.worker.pid] if self.worker is not None else []
        return [self.proc.pid, *children(self.proc.pid), *extra]

    def worker_settled(self, timeout: float = 600.0) -> float:
        """Wait for the worker's first periodic round to end; the seconds waited.

        That round works through the generated history's backlog of overdue
        cases (red-card orders, 200 a round) and, at 1M cases, ran through
        the whole growth timing, taking CPU from the reads timed at the
        largest size only. A running deployment has done it long ago."""
        if self.worker is None:
            return 0.0
        log = self.log.with_name(f"{self.name}-worker.log")
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.worker.poll() is not None:
                raise RuntimeError(f"{self.name} worker exited:\n{log.read_text()[-3000:]}")
            if log.exists() and '"msg": "worker first round done"' in log.read_text():
                return round(time.monotonic() - t0, 1)
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} worker did not finish its first round in {timeout} s")

    def stop(self) -> None:
        for proc in (self.proc, self.worker):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def start_server(
    name: str,
    target: str,
    env: dict[str, str],
    workers: int,
    work: Path,
    *,
    projector: str = "app",
    port: int | None = None,
) -> Server:
    """``projector="worker"``: the app processes do not project; a `ydt worker`
    started beside them does (the deployment of scripts/run.sh and
    docs/deployment.md). ``"app"``: each app process projects, no worker."""
    port = port or support.free_port()
    log = work / f"{name}.log"
    if projector == "worker":
        env = {**env, "YDT_PROJECTOR_IN_APP": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", target, str(port), str(workers)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(name, proc, port, log)
    if projector == "worker":
        # Its projector loop runs continuously; its periodic round (red-card
        # orders, checkpoints, notices) runs at start and then hourly: the
        # generated history holds thousands of overdue cases whose orders a
        # live deployment would have raised over months, 200 per round, and
        # working through that backlog is not the cost of a filing.
        server.worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "ydt"), "worker", "--interval", "3600"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=(work / f"{name}-worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None or (server.worker and server.worker.poll() is not None):
            server.stop()
            logs = [log, work / f"{name}-worker.log"]
            text = "\n".join(p.read_text()[-3000:] for p in logs if p.exists())
            raise RuntimeError(f"{name} exited at start:\n{text}")
        try:
            # Every worker must be up, not only the first to answer.
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200 and len(
                children(proc.pid)
            ) >= (workers if workers > 1 else 0):
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not answer /healthz:\n{log.read_text()[-3000:]}")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """utime + stime of each live process, in seconds (a process gone is left out)."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def cpu_spent(before: dict[int, float], pids: list[int]) -> float:
    """CPU spent since ``before`` by ``pids``: a process started since counts
    whole; one that exited since is left out at both ends. (Summing totals
    at each end instead went negative when a PostgreSQL backend exited during
    a PgBouncer round: its time was in the first sum only.)"""
    after = cpu_by_pid(pids)
    return sum(now - before.get(pid, 0.0) for pid, now in after.items())


async def postgres_pids(db: Database) -> list[int]:
    """This database's backends plus the shared writers (WAL, checkpoints),
    leaving out backends serving other databases on the same server."""
    conn = await asyncpg.connect(db.dsn)
    try:
        rows = await conn.fetch(
            "select pid from pg_stat_activity where (datname = $1 or backend_type in "
            "('walwriter', 'checkpointer', 'background writer')) and pid <> pg_backend_pid()",
            db.name,
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def local_ports(pids: list[int]) -> set[int]:
    """The local TCP ports of these processes' sockets: a backend whose
    ``client_port`` is one of them serves that process (loopback only)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def backends_of(db: Database, pids: list[int]) -> list[int]:
    """The PostgreSQL backends these client processes are connected to."""
    ports = local_ports(pids)
    if not ports:
        return []
    conn = await asyncpg.connect(db.dsn)
    try:
        rows = await conn.fetch(
            "select pid, client_port from pg_stat_activity where datname = $1", db.name
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows if r["client_port"] in ports]


def staff_token(server: Server) -> str:
    resp = httpx.post(f"{server.url}/api/v1/staff/auth/login", json=ADMIN, timeout=30)
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def utcnow() -> datetime:
    return datetime.now(UTC)
