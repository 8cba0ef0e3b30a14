"""PgBouncer from Debian's package in front of the bench database, in
transaction mode, the way docs/deployment.md runs it past one machine.

The app behind it runs with ``YDT_DATABASE_PGBOUNCER=true``: asyncpg's
statement cache off, every statement inside a transaction (no autocommit
paths, no driver shortcuts), so this run measures what that deployment costs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests import support

POOL_SIZE = 20  # server connections per database: two app workers' pools fit


def binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None


@dataclass
class Bouncer:
    proc: subprocess.Popen[bytes]
    port: int
    folder: Path

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{support.PG_USER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start(database: str, work: Path) -> Bouncer:
    """PgBouncer for ``database`` on a free port; its log goes to ``work``."""
    path = binary()
    if path is None:
        raise RuntimeError("pgbouncer is not installed (Debian package pgbouncer)")
    # pgbouncer refuses to run as root: as root it runs as postgres, whose
    # folder this is (the work dir may not be readable by postgres).
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="ydt-bench-bouncer-"))
    port = support.free_port()
    log = work / "pgbouncer.log"
    (folder / "userlist.txt").write_text(f'"{support.PG_USER}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{database} = host={support.PG_HOST} port={support.PG_PORT} dbname={database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir = {folder}\n"
        f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
        f"pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = {POOL_SIZE}\n"
        "server_reset_query = DISCARD ALL\nignore_startup_parameters = extra_float_digits\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    if as_postgres:
        for p in (folder, folder / "userlist.txt", folder / "pgbouncer.ini"):
            shutil.chown(p, "postgres", "postgres")
    proc = subprocess.Popen(
        [*as_postgres, path, str(folder / "pgbouncer.ini")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    bouncer = Bouncer(proc, port, folder)
    try:
        support.wait_for_port(port, 20)
    except RuntimeError:
        bouncer.stop()
        raise RuntimeError(f"pgbouncer did not start:\n{log.read_text()[-2000:]}") from None
    return bouncer
