"""A newcomer's first hour, as the README tells it: `scripts/run.sh` on the
embedded default, a demo resident logging in through the built-in WeChat
stand-in, filing, a cadre accepting, and the worker delivering the notices to
the stand-in (issue 15, item 6). Real processes on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, wait_for_port
from tests.test_embedded_server import (
    ROOT,
    STARTUP_SECONDS,
    copy_of,
    embedded_env,
    prepared,  # noqa: F401 - the module's fixture: a migrated, seeded, demo database
)

VILLAGE = "511702005001"  # 双鱼湖社区, 凤北街道


def _wait_for(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    return check()


def test_run_sh_demo_is_walkable_through_the_wechat_standin(
    prepared: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    var = copy_of(prepared, tmp_path_factory, "demo-walk")
    port = free_port()
    env = {
        **embedded_env(var),
        "SKIP_SETUP": "1",
        "VENV": sys.prefix,
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
        start_new_session=True,
    )
    try:
        wait_for_port(port, STARTUP_SECONDS)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            # 1. A demo resident logs in: the code goes to the stand-in's jscode2session.
            login = http.post(
                "/api/v1/auth/wechat-login", json={"code": "demo-zhang", "scene": VILLAGE}
            )
            assert login.status_code == 200, login.text
            resident = {"Authorization": f"Bearer {login.json()['access_token']}"}
            again = http.post("/api/v1/auth/wechat-login", json={"code": "demo-zhang"})
            assert again.status_code == 200  # the same code is the same resident
            bad = http.post("/api/v1/auth/wechat-login", json={"code": "no spaces!"})
            assert bad.status_code == 401, bad.text

            # 2. Files a case, and sees it among their own.
            filed = http.post(
                "/api/v1/complaints",
                headers=resident,
                json={
                    "item_code": "0101",
                    "region_code": VILLAGE,
                    "content": "村里的财务收支好几个季度都没有公开了，公示栏一直是空的。",
                    "anonymous": False,
                    "contact_name": "张大姐",
                    "contact_phone": "13900001111",
                },
            )
            assert filed.status_code == 201, filed.text
            case = filed.json()
            mine = http.get("/api/v1/complaints/mine", headers=resident).json()
            assert case["id"] in [c["id"] for c in mine["items"]]

            # 3. A cadre of the unit accepts it.
            staff = http.post(
                "/api/v1/staff/auth/login",
                json={"username": "fengbei.zhang", "password": "Demo#2026"},
            )
            assert staff.status_code == 200, staff.text
            cadre = {"Authorization": f"Bearer {staff.json()['access_token']}"}
            accepted = http.post(
                f"/api/v1/staff/complaints/{case['id']}/actions/accept",
                headers=cadre,
                json={"expected_version": 1},
            )
            assert accepted.status_code == 200, accepted.text

            # 4. The worker (a separate process) delivers both notices to the stand-in.
            def received() -> list[dict[str, Any]]:
                got = http.get("/dev/wechat/messages", params={"openid": "standin-demo-zhang"})
                items: list[dict[str, Any]] = got.json()["items"]
                kinds = {m["template_id"] for m in items}
                return items if {"standin-filed", "standin-accepted"} <= kinds else []

            messages = _wait_for(received, 90)
            assert messages, "the worker did not deliver the notices to the stand-in"
            acceptance = next(m for m in messages if m["template_id"] == "standin-accepted")
            assert acceptance["data"]["character_string1"] == case["tracking_no"]
            assert acceptance["data"]["phrase2"] == "已受理"

            # 5. The resident follows the case.
            detail = http.get(f"/api/v1/complaints/{case['id']}", headers=resident).json()
            assert "accepted" in [step["kind"] for step in detail["timeline"]]
            ready = http.get("/readyz").json()
            assert not any("条群众通知" in w for w in ready.get("warnings", []))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
