"""Through a real ``ydt serve`` (uvicorn): a rotating X-Forwarded-For from the
loopback peer is not believed unless YDT_TRUSTED_PROXIES says so. Uvicorn's own
default trusts 127.0.0.1, which is how 35 guesses once went unthrottled."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Lantern#Quietly-84"
LOGIN = "/api/v1/staff/auth/login"


def _env(var: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("YDT_")},
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{var / 'yidiantong.db'}",
        "YDT_MEDIA_DIR": str(var / "media"),
        "YDT_SECRET_FILE": str(var / "jwt-secret"),
        "YDT_KEY_DIR": str(var / "keys"),
        "YDT_LOG_LEVEL": "WARNING",
        **extra,
    }


def _ydt(var: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=_env(var),
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("served-login")
    _ydt(path, "migrate")
    account = ["--username", "root.served", "--password", PASSWORD, "--role", "admin"]
    _ydt(path, "create-staff", *account)
    return path


def _serve(var: Path, **extra: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=_env(var, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 120)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


def _guess_then_log_in(base: str) -> httpx.Response:
    """Five wrong guesses, then the right password, each from a 'new' address."""
    with httpx.Client(base_url=base, timeout=60) as http:
        for i in range(5):
            wrong = http.post(
                LOGIN,
                json={"username": "root.served", "password": f"guess-{i}"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            assert wrong.status_code == 401
        return http.post(
            LOGIN,
            json={"username": "root.served", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.99"},
        )


def test_forwarded_for_from_loopback_is_not_believed_by_default(var: Path) -> None:
    for base in _serve(var):
        right = _guess_then_log_in(base)
        assert right.status_code == 401  # one client (127.0.0.1): its pair is throttled


def test_forwarded_for_is_believed_from_a_configured_proxy(var: Path) -> None:
    for base in _serve(var, YDT_TRUSTED_PROXIES="127.0.0.1"):
        right = _guess_then_log_in(base)
        assert right.status_code == 200, right.text  # six clients: none throttled
