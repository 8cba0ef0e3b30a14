"""The embedded default as a newcomer runs it: `ydt migrate`, `ydt seed`, a real
uvicorn process on SQLite + local media, and residents filing at the same time;
and `scripts/run.sh`, which serves with `ydt worker` beside it.

This catches what in-process tests cannot: several connections to one SQLite
file (a request's transaction, the shared store, concurrent requests), and two
processes that must start and stop together.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image

from app.cli import derived_base_url, served_base_url
from app.core.config import Settings
from tests import mediafiles
from tests.fake_wechat import RISKY_MARK, FakeWeChat
from tests.support import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
# Importing the app (PyAV, jieba, cryptography...) takes seconds, and far more
# on a loaded two-core machine.
STARTUP_SECONDS = 120


def embedded_env(var: Path) -> dict[str, str]:
    """An embedded-default environment rooted in ``var``, free of the caller's YDT_*."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("YDT_")},
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'yidiantong.db'}",
        "YDT_MEDIA_DIR": str(var / "media"),
        "YDT_SECRET_FILE": str(var / "jwt-secret"),
        "YDT_LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, seeded database with the demo accounts, made once and copied
    by each test that serves from it (seeding is the slow part)."""
    var = tmp_path_factory.mktemp("prepared")
    for cmd in (["migrate"], ["seed"], ["demo"]):
        subprocess.run(
            [sys.executable, "-m", "app.cli", *cmd],
            cwd=ROOT,
            env=embedded_env(var),
            check=True,
            capture_output=True,
            timeout=120,
        )
    return var


def copy_of(prepared: Path, tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    var = tmp_path_factory.mktemp(name)
    shutil.copy(prepared / "yidiantong.db", var / "yidiantong.db")
    return var


@pytest.fixture(scope="module")
def server(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = copy_of(prepared, tmp_path_factory, "embedded")
    with serving({**embedded_env(var), "YDT_DEV_LOGIN_ENABLED": "true"}) as url:
        yield url


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """`ydt serve` on a free port with ``env``; its URL while it runs."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, STARTUP_SECONDS)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_residents_file_concurrently_on_the_embedded_default(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        assert (await http.get("/readyz")).json()["checks"] == {"database": "ok", "storage": "ok"}

        async def file(i: int) -> httpx.Response:
            login = await http.post(
                "/api/v1/auth/dev-login", json={"openid": f"r{i}", "scene": "511702005001"}
            )
            token = login.json()["access_token"]
            return await http.post(
                "/api/v1/complaints",
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"e2e-{i}"},
                json={
                    "item_code": "0101",
                    "region_code": "511702005001",
                    "content": "村里账目好久没公开了，请核查。",
                    "anonymous": i % 2 == 0,
                    **({} if i % 2 == 0 else {"contact_phone": "13800001111"}),
                },
            )

        results = await asyncio.gather(*(file(i) for i in range(8)))
        assert [r.status_code for r in results] == [201] * 8, [
            r.text for r in results if r.status_code != 201
        ]
        numbers = sorted(r.json()["tracking_no"] for r in results)
        assert (
            len(set(numbers)) == 8 and int(numbers[-1][-6:]) - int(numbers[0][-6:]) == 7
        )  # gapless

        staff = await http.post(
            "/api/v1/staff/auth/login", json={"username": "fengbei.zhang", "password": "Demo#2026"}
        )
        assert staff.status_code == 200
        queue = await http.get(
            "/api/v1/staff/complaints",
            headers={"Authorization": f"Bearer {staff.json()['access_token']}"},
        )
        assert len(queue.json()["items"]) == 8


def with_fake_wechat(var: Path, wechat: FakeWeChat, **extra: str) -> dict[str, str]:
    """The embedded default pointed at the tests' fake WeChat (so no stand-in,
    and content security on), with demo logins for the residents."""
    return {
        **embedded_env(var),
        "YDT_DEV_LOGIN_ENABLED": "true",
        "YDT_WECHAT_API_BASE": wechat.url,
        "YDT_WECHAT_APPID": "wx-test-app",
        "YDT_WECHAT_SECRET": "wx-test-secret",
        **extra,
    }


async def resident(http: httpx.AsyncClient, openid: str) -> dict[str, str]:
    """A demo resident of 双鱼湖社区 logged in: their bearer header."""
    login = await http.post(
        "/api/v1/auth/dev-login", json={"openid": openid, "scene": "511702005001"}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@contextlib.contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Another connection holds the SQLite file's write lock meanwhile."""
    writer = sqlite3.connect(db, timeout=5)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.rollback()
        writer.close()


def _write_lock_free(db: Path, within: float) -> bool:
    """Whether another connection can take the SQLite file's write lock within
    ``within`` seconds (another request's short write may hold it a moment)."""
    con = sqlite3.connect(db, timeout=within)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return True
    except sqlite3.OperationalError:  # "database is locked"
        return False
    finally:
        con.close()


async def test_no_write_lock_is_held_while_wechat_checks_a_resident_text(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory, wechat: FakeWeChat
) -> None:
    """WeChat judges a filing's or a supplement's text over the internet, in up
    to seconds: the database's write lock must be free all that time, or
    every writer of every process (cadres, the worker, other filings) waits
    for WeChat."""
    var = copy_of(prepared, tmp_path_factory, "checked")
    db = var / "yidiantong.db"
    seen: list[bool] = []
    # Well inside the app's wait for WeChat (YDT_CONTENT_CHECK_TIMEOUT_SECONDS
    # below): a filing holding the lock through its check would still hold it.
    wechat.on_text_check = lambda: seen.append(_write_lock_free(db, within=2.0))
    with serving(with_fake_wechat(var, wechat, YDT_CONTENT_CHECK_TIMEOUT_SECONDS="15")) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            headers = await resident(http, "checked")
            body = {
                "item_code": "0101",
                "region_code": "511702005001",
                "content": "村里账目好久没公开了，请核查。",
                "anonymous": True,
            }

            async def file(content: str, key: str) -> httpx.Response:
                return await http.post(
                    "/api/v1/complaints",
                    headers={**headers, "Idempotency-Key": key},
                    json={**body, "content": content},
                )

            refused = await file(body["content"] + RISKY_MARK, "checked-1")
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"] == "content_risky"
            # The refusal freed the key: the resident's corrected text goes in under it.
            filed = await file(str(body["content"]), "checked-1")
            assert filed.status_code == 201, filed.text
            again = await file(str(body["content"]), "checked-1")
            assert again.status_code == 201 and again.json() == filed.json()
            both = await asyncio.gather(
                *(file(str(body["content"]), f"checked-{i}") for i in (2, 3))
            )
            assert [r.status_code for r in both] == [201, 201], [r.text for r in both]
            added = await http.post(
                f"/api/v1/complaints/{filed.json()['id']}/supplements",
                headers=headers,
                json={"content": "补充：公示栏在村委会门口。"},
            )
            assert added.status_code == 201, added.text
    # Five texts judged (the replay asked WeChat nothing), each with the lock free.
    assert seen == [True] * 5


async def test_public_reads_answer_while_a_writer_holds_the_database(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The residents' public pages and the pickers' lists only read: on SQLite
    they must not wait for the database's write lock (a long import, the
    worker's batch, another process's write), as a writer's session would."""
    var = copy_of(prepared, tmp_path_factory, "reads")
    with serving(embedded_env(var)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            scene = (await http.get("/api/v1/regions/511702005001")).json()["scene"]
            paths = [
                f"/q/{scene}",
                f"/q/{scene}/open",
                f"/q/{scene}/disclosures",
                f"/q/{scene}/stats",
                f"/q/{scene}/track",
                "/api/v1/taxonomy",
                "/api/v1/taxonomy/items?q=%E8%B4%A2%E5%8A%A1",
                "/api/v1/regions/511702005001",
                "/api/v1/regions/511702005001/children",
                f"/api/v1/scenes/{scene}",
                "/api/v1/disclosures?region_code=511702005001",
                "/api/v1/stats/public?region_code=511702005001",
            ]
            for path in paths:  # first answers load templates and dictionaries
                assert (await http.get(path)).status_code == 200, path
            with write_locked(var / "yidiantong.db"):
                for path in paths:
                    # Far below the app's busy timeout (10 s) a writer's session waits.
                    resp = await asyncio.wait_for(http.get(path), timeout=5)
                    assert resp.status_code == 200, (path, resp.status_code, resp.text[:200])


async def test_signed_in_reads_answer_while_a_writer_holds_the_database(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A resident's own list, a cadre's lists, a leader's statistics and an
    admin's settings pages only read: on SQLite they take a read session,
    login check included, so they neither wait for the database's write lock
    nor hold it (and the process's writer lock) while they render, which
    every resident's filing would wait on."""
    var = copy_of(prepared, tmp_path_factory, "staff-reads")
    with serving({**embedded_env(var), "YDT_DEV_LOGIN_ENABLED": "true"}) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def login(username: str) -> dict[str, str]:
                body = {"username": username, "password": "Demo#2026"}
                resp = await http.post("/api/v1/staff/auth/login", json=body)
                assert resp.status_code == 200, resp.text
                return {"Authorization": f"Bearer {resp.json()['access_token']}"}

            cadre, admin = await login("fengbei.zhang"), await login("admin")
            me = (await http.get("/api/v1/staff/me", headers=admin)).json()["id"]
            citizen = await resident(http, "reads-resident")
            # The mini-program polls its upload while it is judged.
            uploaded = await http.post(
                "/api/v1/media",
                headers=citizen,
                data={"kind": "image"},
                files={"file": ("p.png", mediafiles.png(), "image/png")},
            )
            assert uploaded.status_code == 201, uploaded.text
            reads = [
                (citizen, "/api/v1/auth/me"),
                (citizen, "/api/v1/complaints/mine"),
                (citizen, f"/api/v1/media/{uploaded.json()['id']}"),
                (cadre, "/api/v1/staff/me"),
                (cadre, "/api/v1/staff/complaints"),
                (cadre, "/api/v1/staff/complaints?card=red"),
                (cadre, "/api/v1/staff/supervision-orders"),
                (cadre, "/api/v1/staff/notices"),
                (cadre, "/api/v1/staff/notifications/failures"),
                (cadre, "/api/v1/staff/callbacks"),
                (cadre, "/api/v1/staff/disclosures"),
                (cadre, "/api/v1/staff/units"),
                (cadre, "/api/v1/staff/calendar/2026"),
                (cadre, "/api/v1/staff/stats/overview"),
                (cadre, "/api/v1/staff/stats/rankings"),
                (cadre, "/api/v1/staff/ledger.xlsx"),
                (admin, "/api/v1/staff/users"),
                (admin, f"/api/v1/staff/users/{me}"),
                (admin, f"/api/v1/staff/users/{me}/sessions"),
                (admin, f"/api/v1/staff/users/{me}/login-attempts"),
                (admin, "/api/v1/staff/routing/overrides"),
                (admin, "/api/v1/staff/routing/designated-cadres"),
            ]
            for headers, path in reads:  # first answers load templates and libraries
                assert (await http.get(path, headers=headers)).status_code == 200, path
            with write_locked(var / "yidiantong.db"):
                for headers, path in reads:
                    resp = await asyncio.wait_for(http.get(path, headers=headers), timeout=5)
                    assert resp.status_code == 200, (path, resp.status_code, resp.text[:200])


async def test_console_pages_answer_while_a_writer_holds_the_database(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The console's pages that only read (the inbox, the queue, the
    dashboard, the register, the settings pages) look the browser session up
    in a read session: they render while another connection holds the write
    lock. Its mark of use, due once a minute, is not due right after signing
    in, so none of these requests needs to write."""
    var = copy_of(prepared, tmp_path_factory, "console-reads")
    with serving(embedded_env(var)) as url:
        cadre = httpx.AsyncClient(base_url=url, timeout=30)
        admin = httpx.AsyncClient(base_url=url, timeout=30)
        async with cadre, admin:
            for http, username in ((cadre, "fengbei.zhang"), (admin, "admin")):
                page = await http.get("/console/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert token, page.text[:200]
                body = {"username": username, "password": "Demo#2026", "csrf_token": token[1]}
                signed = await http.post("/console/login", data=body)
                assert signed.status_code == 303, signed.text[:200]
            pages = [
                (cadre, "/console/"),
                (cadre, "/console/inbox"),
                (cadre, "/console/queue"),
                (cadre, "/console/dashboard"),
                (cadre, "/console/ledger.xlsx"),
                (cadre, "/console/intake"),
                (admin, "/console/admin"),
                (admin, "/console/admin/users"),
                (admin, "/console/admin/calendar"),
                (admin, "/console/admin/routing"),
                (admin, "/console/admin/qrcodes"),
            ]
            for http, path in pages:  # first answers load templates and libraries
                assert (await http.get(path)).status_code in (200, 303), path
            with write_locked(var / "yidiantong.db"):
                for http, path in pages:
                    resp = await asyncio.wait_for(http.get(path), timeout=5)
                    assert resp.status_code in (200, 303), (path, resp.status_code)
                    if resp.status_code == 303:  # a home page sends the role on, never out
                        assert path in ("/console/", "/console/admin"), path
                        assert "/login" not in resp.headers["location"]


async def test_a_login_waiting_on_wechat_holds_up_no_write(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory, wechat: FakeWeChat
) -> None:
    """WeChat answers a login code over the internet: while it does, the rest
    of the process must go on writing (on SQLite a writer's session holds
    the process's writer lock from the moment it is taken)."""
    var = copy_of(prepared, tmp_path_factory, "login")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait(30)

    wechat.on_login = hold
    with serving(with_fake_wechat(var, wechat, YDT_WECHAT_TIMEOUT_SECONDS="20")) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            headers = await resident(http, "other")
            login = asyncio.create_task(
                http.post("/api/v1/auth/wechat-login", json={"code": "ok-waiting"})
            )
            try:
                assert await asyncio.to_thread(held.wait, 20)  # WeChat has the code
                filed = await asyncio.wait_for(
                    http.post(
                        "/api/v1/complaints",
                        headers=headers,
                        json={
                            "item_code": "0101",
                            "region_code": "511702005001",
                            "content": "村里账目好久没公开了，请核查。",
                            "anonymous": True,
                        },
                    ),
                    timeout=10,
                )
                assert filed.status_code == 201, filed.text
            finally:
                release.set()
            assert (await login).status_code == 200


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie nobody reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_run_sh_serves_with_its_worker_and_stops_both_on_sigterm(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """PORT=… scripts/run.sh: the server and `ydt worker` both run, QR codes point
    at the port actually served (not 8000), and SIGTERM leaves no process behind."""
    var = copy_of(prepared, tmp_path_factory, "runsh")
    port = free_port()
    env = {
        **embedded_env(var),
        "SKIP_SETUP": "1",  # install/migrate/seed/demo: done once by `prepared`
        "VENV": sys.prefix,  # the interpreter running the tests has the package installed
        "PORT": str(port),
        "WORKER_INTERVAL": "1",
    }
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "run.sh")],
        cwd=var,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a stray child could be killed by group below
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner, banner
        server_pid = int(banner.split("(pid ")[1].split(")")[0])
        worker_pid = int(banner.rsplit("worker pid ", 1)[1].split(";")[0])
        wait_for_port(port, STARTUP_SECONDS)
        assert _alive(server_pid) and " serve " in _cmdline(server_pid)
        assert _alive(worker_pid) and " worker " in _cmdline(worker_pid)

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert http.get("/readyz").status_code == 200
            login = http.post(
                "/api/v1/staff/auth/login",
                json={"username": "fengbei.zhang", "password": "Demo#2026"},
            )
            assert login.status_code == 200, login.text
            poster = http.get(
                "/api/v1/staff/qrcodes/511702005001.png",
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
            )
            assert poster.status_code == 200, poster.text
        decoded = [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(poster.content)))]
        assert decoded == [f"http://127.0.0.1:{port}/q/511702005001"], decoded

        time.sleep(1.5)  # the worker has ticked at least once, and is still up
        assert _alive(worker_pid), "the worker stopped on its own"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
        deadline = time.monotonic() + 10
        while (_alive(server_pid) or _alive(worker_pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server_pid), "the server outlived run.sh"
        assert not _alive(worker_pid), "the worker outlived run.sh (orphan)"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_run_sh_stops_the_server_when_the_worker_dies(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """One command, one lifetime: a worker that exits takes the server down with
    it instead of leaving a server that silently sends no notices."""
    var = copy_of(prepared, tmp_path_factory, "runsh-worker")
    port = free_port()
    env = {**embedded_env(var), "SKIP_SETUP": "1", "VENV": sys.prefix, "PORT": str(port)}
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "run.sh")],
        cwd=var,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        server_pid = int(banner.split("(pid ")[1].split(")")[0])
        worker_pid = int(banner.rsplit("worker pid ", 1)[1].split(";")[0])
        wait_for_port(port, STARTUP_SECONDS)
        os.kill(worker_pid, signal.SIGKILL)
        assert proc.wait(30) != 0
        deadline = time.monotonic() + 10
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server_pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8002"),
        ("0.0.0.0", "http://127.0.0.1:8002"),
        ("::", "http://[::1]:8002"),
        ("fe80::1", "http://[fe80::1]:8002"),
        ("ydt.local", "http://ydt.local:8002"),
    ],
)
def test_served_base_url(host: str, url: str) -> None:
    assert served_base_url(host, 8002) == url


def test_public_base_url_is_derived_only_on_the_embedded_default_when_unset() -> None:
    embedded = Settings(_env_file=None)  # type: ignore[call-arg]
    assert derived_base_url(embedded, "127.0.0.1", 8002) == "http://127.0.0.1:8002"
    explicit = Settings(_env_file=None, public_base_url="https://ydt.example.gov.cn")  # type: ignore[call-arg]
    assert derived_base_url(explicit, "127.0.0.1", 8002) is None
    production = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url="postgresql+asyncpg://ydt@db/ydt", storage="s3"
    )
    assert derived_base_url(production, "0.0.0.0", 8002) is None
