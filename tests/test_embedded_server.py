"""The embedded default as a newcomer runs it: `ydt migrate`, `ydt seed`, a real
uvicorn process on SQLite + local media, and residents filing at the same time.

This catches what in-process tests cannot: several connections to one SQLite
file (a request's transaction, the shared store, concurrent requests).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("embedded")
    env = {
        **os.environ,
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'yidiantong.db'}",
        "YDT_MEDIA_DIR": str(var / "media"),
        "YDT_SECRET_FILE": str(var / "jwt-secret"),
        "YDT_DEV_LOGIN_ENABLED": "true",
        "YDT_LOG_LEVEL": "WARNING",
    }
    for cmd in (["migrate"], ["seed"], ["demo"]):
        subprocess.run(
            [sys.executable, "-m", "app.cli", *cmd],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30)
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
