"""Over real HTTP: `ydt serve` and `ydt worker --once` as processes, the fake
WeChat fetching the media link the worker submitted and pushing its signed
verdict back to the served push route, the way WeChat does."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import mediafiles
from tests.console.live import ROOT, VILLAGE, prepare
from tests.fake_wechat import FakeWeChat
from tests.moderation.helpers import TOKEN
from tests.support import free_port, wait_for_port


@pytest.fixture
def served(wechat: FakeWeChat) -> Iterator[tuple[str, dict[str, str]]]:
    var = Path(tempfile.mkdtemp(prefix="ydt-moderation-live-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"sqlite+aiosqlite:///{var / 'yidiantong.db'}"
    env = {
        **os.environ,
        "YDT_DATABASE_URL": url,
        "YDT_MEDIA_DIR": str(var / "media"),
        "YDT_SECRET_FILE": str(var / "jwt-secret"),
        "YDT_KEY_DIR": str(var / "keys"),
        "YDT_PUBLIC_BASE_URL": base,
        "YDT_WECHAT_API_BASE": wechat.url,
        "YDT_WECHAT_APPID": "wx-test-app",
        "YDT_WECHAT_SECRET": "wx-test-secret",
        "YDT_WECHAT_MESSAGE_TOKEN": TOKEN,
        "YDT_LOG_LEVEL": "WARNING",
    }
    asyncio.run(prepare(url))
    log = (var / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, 60)
        yield base, env
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(var, ignore_errors=True)


def test_wechat_fetches_the_link_and_pushes_the_verdict_to_the_served_route(
    served: tuple[str, dict[str, str]], wechat: FakeWeChat
) -> None:
    base, env = served
    wechat.push_url, wechat.push_token, wechat.fetch_media = (
        f"{base}/api/v1/wechat/events",
        TOKEN,
        True,
    )
    wechat.media_verdicts.append("review")
    with httpx.Client(base_url=base, timeout=30) as http:
        login = http.post("/api/v1/auth/wechat-login", json={"code": "ok-e2e", "scene": VILLAGE})
        assert login.status_code == 200, login.text
        h = {"Authorization": f"Bearer {login.json()['access_token']}"}
        data = mediafiles.png()
        up = http.post(
            "/api/v1/media", headers=h, data={"kind": "image"}, files={"file": ("f", data)}
        )
        assert up.status_code == 201 and up.json()["moderation"] == "checking", up.text
        media_id = up.json()["id"]

        worker = subprocess.run(
            [sys.executable, "-m", "app.cli", "worker", "--once"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr
        [submitted] = wechat.media_checks.values()
        stored = http.get(up.json()["url"].replace(base, ""))
        assert submitted["fetched"] == stored.content  # WeChat could read the image

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = http.get(f"/api/v1/media/{media_id}", headers=h).json()
            if now["moderation"] != "checking":
                break
            time.sleep(0.3)
        assert now["moderation"] == "review", now
