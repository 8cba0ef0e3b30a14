"""The multi-instance deployment on one machine, without Docker.

Starts, under a throwaway folder, what docs/deployment.md describes:

* a PostgreSQL primary (Debian's ``initdb`` / ``pg_ctl``) on a free port,
  with WAL for streaming replication;
* a real streaming replica made with ``pg_basebackup -R`` on another port;
* PgBouncer (Debian's package) in transaction mode in front of both
  (databases ``ydt`` -> primary and ``ydt_replica`` -> replica);
* Redis for the shared state (rate limits, caches, write positions) and a
  moto S3 server for media;
* ``ydt migrate``, ``ydt seed`` and ``ydt demo`` against the primary;
* two app processes (``ydt serve``) and two ``ydt worker`` processes, all
  through PgBouncer with ``YDT_DATABASE_PGBOUNCER=true``;

and tears all of it down at the end. ``python scripts/multi_instance.py``
brings it up, checks each app answers /readyz, prints the addresses and, with
``--hold``, waits for Ctrl-C. tests/deploy/test_multi_instance.py drives the
same ``Topology`` class.

Run as root, the PostgreSQL and PgBouncer processes run as the ``postgres``
user (both refuse root); PgBouncer is installed with apt-get when missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "Demo#2026"


class Unavailable(RuntimeError):
    """A binary this topology needs is not on the machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def pg_bindir() -> Path:
    """Debian's newest PostgreSQL server binaries."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise Unavailable("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
    return found[-1].parent


def ensure_pgbouncer(*, install: bool) -> str:
    """pgbouncer's path; installed from Debian's package when allowed (root)."""
    path = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if path:
        return path
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "pgbouncer"],
            check=False,
            capture_output=True,
            timeout=300,
        )
        path = shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
        )
    if not path:
        raise Unavailable("pgbouncer (Debian package pgbouncer)")
    return path


def requirements(*, install: bool = False) -> tuple[Path, str, str]:
    """(PostgreSQL bin dir, pgbouncer, redis-server) or Unavailable naming what is missing."""
    bindir = pg_bindir()
    bouncer = ensure_pgbouncer(install=install)
    redis = shutil.which("redis-server")
    if not redis:
        raise Unavailable("redis-server (Debian package redis-server)")
    return bindir, bouncer, redis


class Topology:
    """Everything started, in order, and stopped in reverse."""

    def __init__(
        self,
        *,
        workers: int = 2,
        apps: int = 2,
        env: dict[str, str] | None = None,
        install: bool = False,
        keep: bool = False,
    ) -> None:
        self.bindir, self.pgbouncer_bin, self.redis_bin = requirements(install=install)
        self.root = Path(tempfile.mkdtemp(prefix="ydt-multi-"))
        self.root.chmod(0o755)  # the postgres user must reach its folders
        self.keep = keep
        self.extra_env = env or {}
        self.n_apps, self.n_workers = apps, workers
        self.primary_port, self.replica_port = free_port(), free_port()
        self.bouncer_port, self.redis_port, self.s3_port = free_port(), free_port(), free_port()
        self.app_ports = [free_port() for _ in range(apps)]
        self.services: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.apps: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.clusters: list[Path] = []
        self.timings: dict[str, float] = {}  # seconds each start-up step took
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.secrets = {
            "YDT_JWT_SECRET": secrets.token_urlsafe(48),
            "YDT_IDENTITY_KEYS": f"k1:{secrets.token_urlsafe(32)}",
            "YDT_CHAIN_KEY": secrets.token_urlsafe(32),
            "YDT_INDEX_KEY": secrets.token_urlsafe(32),
            "YDT_AUDIT_SIGNING_KEY": secrets.token_hex(32),
        }

    # -- addresses ---------------------------------------------------------
    def dsn(self, port: int, db: str = "ydt") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{db}"

    @property
    def primary_dsn(self) -> str:
        return self.dsn(self.primary_port)

    @property
    def replica_dsn(self) -> str:
        return self.dsn(self.replica_port)

    @property
    def app_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.app_ports]

    def env(self, *, direct: bool = False) -> dict[str, str]:
        """The processes' environment: through PgBouncer unless ``direct``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("YDT_")}
        if direct:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.primary_port}/ydt"
        else:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.bouncer_port}/ydt"
        return {
            **base,
            **self.secrets,
            "YDT_ENV": "test",
            "YDT_DATABASE_URL": url,
            "YDT_DATABASE_PGBOUNCER": "false" if direct else "true",
            "YDT_DATABASE_REPLICA_URL": (
                f"postgresql+asyncpg://postgres@127.0.0.1:{self.bouncer_port}/ydt_replica"
            ),
            "YDT_DATABASE_POOL_SIZE": "4",
            "YDT_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "YDT_STORAGE": "s3",
            "YDT_S3_ENDPOINT": f"127.0.0.1:{self.s3_port}",
            "YDT_S3_ACCESS_KEY": "testing",
            "YDT_S3_SECRET_KEY": "testing",
            "YDT_MODEL_DIR": str(self.root / "models"),
            "YDT_KEY_DIR": str(self.root / "keys"),
            "YDT_LOG_LEVEL": "WARNING",
            "YDT_LOG_JSON": "true",
            **self.extra_env,
        }

    # -- helpers -----------------------------------------------------------
    def _pg(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self.as_postgres, str(self.bindir / tool), *args],
            capture_output=True,
            timeout=timeout,
            cwd=self.root,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def _own(self, path: Path) -> None:
        if self.as_postgres:
            shutil.chown(path, "postgres", "postgres")

    def _spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        if not path.exists():
            path = self.root / "pg" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- start -------------------------------------------------------------
    def _step(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.timings[name] = round(now - since, 2)
        return now

    def start(self) -> Topology:
        t = time.monotonic()
        try:
            self._start_databases()
            t = self._step("primary and replica", t)
            self._start_pgbouncer()
            self._start_redis_and_s3()
            t = self._step("pgbouncer, redis, s3", t)
            self._prepare_schema()
            t = self._step("migrate, seed, demo", t)
            for i in range(self.n_apps):
                self.start_app(i)
            for i in range(self.n_workers):
                self.start_worker(i)
            for i, port in enumerate(self.app_ports):
                wait_for_port(port, 120, self.apps[i])
            self._step("apps listening", t)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_databases(self) -> None:
        primary, replica = self.root / "primary", self.root / "replica"
        primary.mkdir()
        self._own(primary)
        self._pg("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        sockets = self.root / "pg"  # sockets and server logs, the postgres user's
        sockets.mkdir()
        self._own(sockets)
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.primary_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{sockets}'\nwal_level = replica\n"
                "max_wal_senders = 5\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nshared_buffers = 32MB\nmax_connections = 100\n"
            )
        self._pg(
            "pg_ctl", "-D", str(primary), "-l", str(self.root / "pg" / "primary.log"), "-w", "start"
        )
        self.clusters.append(primary)
        self._pg(
            "createdb", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres", "ydt"
        )
        replica.mkdir()
        replica.chmod(0o700)
        self._own(replica)
        self._pg(
            "pg_basebackup",
            "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(replica), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        with (replica / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"\nport = {self.replica_port}\nhot_standby = on\n")
        self._pg(
            "pg_ctl", "-D", str(replica), "-l", str(self.root / "pg" / "replica.log"), "-w", "start"
        )
        self.clusters.append(replica)

    def _start_pgbouncer(self) -> None:
        folder = self.root / "pgbouncer"
        folder.mkdir()
        (folder / "userlist.txt").write_text('"postgres" ""\n')
        (folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"ydt = host=127.0.0.1 port={self.primary_port} dbname=ydt\n"
            f"ydt_replica = host=127.0.0.1 port={self.replica_port} dbname=ydt\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.bouncer_port}\n"
            f"unix_socket_dir = {folder}\n"
            f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
            "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 20\n"
            "server_reset_query = DISCARD ALL\nserver_lifetime = 600\nserver_login_retry = 1\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {folder / 'pgbouncer.log'}\n"
        )
        for path in (folder, folder / "userlist.txt", folder / "pgbouncer.ini"):
            self._own(path)
        proc = self._spawn(
            "pgbouncer", [*self.as_postgres, self.pgbouncer_bin, str(folder / "pgbouncer.ini")]
        )
        self.services.append(("pgbouncer", proc))
        wait_for_port(self.bouncer_port, 20, proc)

    def _start_redis_and_s3(self) -> None:
        redis = self._spawn(
            "redis",
            [
                self.redis_bin, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.root),
            ],
        )  # fmt: skip
        self.services.append(("redis", redis))
        moto = self._spawn(
            "s3",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)],
        )
        self.services.append(("s3", moto))
        wait_for_port(self.redis_port, 20, redis)
        wait_for_port(self.s3_port, 30, moto)

    def _prepare_schema(self) -> None:
        """``ydt migrate``, ``ydt seed`` and ``ydt demo`` in one interpreter
        (three imports of the app cost more than the work on a loaded machine)."""
        env = self.env(direct=True)  # DDL on the primary itself, not through the bouncer
        steps = [["migrate"], ["seed"], ["demo", "--password", DEMO_PASSWORD]]
        code = (
            "import sys\n"
            "from app.cli import main\n"
            f"for step in {steps!r}:\n"
            "    if main(step):\n"
            "        sys.exit(f'ydt {step[0]} failed')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(f"preparing the database failed: {done.stderr.decode()[-2000:]}")

    def start_app(self, i: int) -> subprocess.Popen[bytes]:
        env = {**self.env(), "YDT_PUBLIC_BASE_URL": self.app_urls[i]}
        argv = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.app_ports[i])]
        proc = self._spawn(f"app{i}", argv, env=env)
        self.apps.append(proc)
        return proc

    def start_worker(self, i: int, interval: float = 1.0) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "app.cli", "worker", "--interval", str(interval)]
        proc = self._spawn(f"worker{i}", argv, env=self.env())
        self.workers.append(proc)
        return proc

    def ready(self, url: str, timeout: float = 60) -> int:
        """/readyz's status once the app answers at all (it may still be starting)."""
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            try:
                return httpx.get(f"{url}/readyz", timeout=10).status_code
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # -- stop --------------------------------------------------------------
    def stop(self) -> None:
        for proc in [*self.workers, *self.apps, *(p for _, p in reversed(self.services))]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, *self.apps, *(p for _, p in self.services)]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for cluster in reversed(self.clusters):
            with contextlib.suppress(subprocess.SubprocessError):
                self._pg("pg_ctl", "-D", str(cluster), "-m", "immediate", "-w", "stop", timeout=60)
        self.clusters.clear()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", action="store_true", help="keep it running until Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs) afterwards")
    args = parser.parse_args(argv)
    try:
        topology = Topology(install=True, keep=args.keep)
    except Unavailable as exc:
        print(f"cannot run: {exc} is missing", file=sys.stderr)
        return 2
    with topology:
        print("start-up seconds:", topology.timings)
        for url in topology.app_urls:
            print(f"{url}/readyz -> {topology.ready(url)}")
        print(f"primary   {topology.primary_dsn}")
        print(f"replica   {topology.replica_dsn}")
        print(f"pgbouncer postgresql://postgres@127.0.0.1:{topology.bouncer_port}/ydt")
        print(f"redis     redis://127.0.0.1:{topology.redis_port}/0")
        print(f"folder    {topology.root}")
        if args.hold:
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
