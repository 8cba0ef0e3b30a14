"""A live console for browser tests: migrated, seeded, the demo accounts, and a
real uvicorn (`ydt serve`) on a free loopback port over a throw-away SQLite
database, plus headless
Chromium from Debian's `chromium` package driven by Playwright (no browser
download: it is launched by `executable_path`)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine
from app.reference import demo
from app.reference import service as reference_service
from tests.conftest import make_settings
from tests.support import IN_CI, alembic_upgrade, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "Demo#2026"
VILLAGE = "511702005001"  # 双鱼湖社区 → 凤北街道纪工委


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot_dir() -> Path:
    """YDT_SCREENSHOT_DIR, or a fresh temporary folder; printed by the tests."""
    configured = os.environ.get("YDT_SCREENSHOT_DIR")
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="ydt-console-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Live:
    base: str
    shots: Path
    foreign: list[str] = field(default_factory=list)  # requests to other hosts
    csp_errors: list[str] = field(default_factory=list)
    counter: int = 0
    log: Path | None = None  # the server's output, shown with a failed test

    def log_tail(self, limit: int = 20_000) -> str:
        """The end of the server's output (a failed browser test shows it:
        a page that never came is otherwise a bare timeout)."""
        if self.log is None or not self.log.exists():
            return ""
        data = self.log.read_bytes()
        return data[-limit:].decode("utf-8", "replace")

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)

    def resident_files(self, openid: str, **overrides: Any) -> dict[str, Any]:
        """A resident files a fresh case through the API (dev login)."""
        with self.api() as http:
            login = http.post("/api/v1/auth/dev-login", json={"openid": openid, "scene": VILLAGE})
            assert login.status_code == 200, login.text
            body: dict[str, Any] = {
                "item_code": "0101",
                "region_code": VILLAGE,
                "content": "村里的财务收支好几个季度都没有公开了，公示栏一直是空的，请帮忙核查。",
                "anonymous": False,
                "contact_name": "李大姐",
                "contact_phone": "13900001111",
                **overrides,
            }
            resp = http.post(
                "/api/v1/complaints",
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                json=body,
            )
            assert resp.status_code == 201, resp.text
            return resp.json()  # type: ignore[no-any-return]

    def staff_token(self, username: str) -> dict[str, str]:
        with self.api() as http:
            resp = http.post(
                "/api/v1/staff/auth/login",
                json={"username": username, "password": DEMO_PASSWORD},
            )
            assert resp.status_code == 200, resp.text
            return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    def act(self, username: str, cid: str, action: str, **body: Any) -> dict[str, Any]:
        """An action through the API, at the case's current version."""
        h = self.staff_token(username)
        with self.api() as http:
            version = http.get(f"/api/v1/staff/complaints/{cid}", headers=h).json()["version"]
            resp = http.post(
                f"/api/v1/staff/complaints/{cid}/actions/{action}",
                headers=h,
                json={"expected_version": version, **body},
            )
            assert resp.status_code == 200, resp.text
            return resp.json()  # type: ignore[no-any-return]


async def prepare(url: str) -> None:
    """What `ydt migrate`, `ydt seed` and `ydt demo` do, in this process (three
    interpreter starts cost more than the work on a busy machine)."""
    await asyncio.to_thread(alembic_upgrade, url)
    engine = create_engine(make_settings(database_url=url), url=url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            now = datetime.now(UTC)
            await reference_service.seed(session, now=now)
            await demo.create_demo(session, now=now, password=DEMO_PASSWORD)
            await session.commit()
    finally:
        await engine.dispose()


@asynccontextmanager
async def serve(**extra_env: str) -> AsyncIterator[Live]:
    """A migrated, seeded server with the demo accounts; ``extra_env`` adds settings."""
    var = Path(tempfile.mkdtemp(prefix="ydt-console-live-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"sqlite+aiosqlite:///{var / 'yidiantong.db'}"
    env = {
        **os.environ,
        "YDT_DATABASE_URL": url,
        "YDT_MEDIA_DIR": str(var / "media"),
        "YDT_SECRET_FILE": str(var / "jwt-secret"),
        "YDT_DEV_LOGIN_ENABLED": "true",
        "YDT_PUBLIC_BASE_URL": base,
        # The access line of every request (a failed test shows them: which
        # request was slow, which failed).
        "YDT_LOG_LEVEL": "INFO",
        **extra_env,
    }
    await prepare(url)
    log = (var / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.to_thread(wait_for_port, port, 60)
        shots = screenshot_dir()
        print(f"\nscreenshots: {shots}")
        yield Live(base=base, shots=shots, log=var / "server.log")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(var, ignore_errors=True)


@pytest.fixture(scope="module")
async def live_server() -> AsyncIterator[Live]:
    async with serve() as live:
        yield live


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        message = "Debian's chromium is not installed (scripts/test.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
