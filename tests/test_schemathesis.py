"""Schemathesis against the running app: every operation, with a resident's and an
administrator's token, on SQLite and on PostgreSQL. It fails on any 5xx, and on
any answer the OpenAPI document does not describe (status code, content type,
body schema), and when data the document forbids is accepted.

The app is served by uvicorn on loopback from a database of its own (migrated,
seeded, with demo accounts), so requests go over real HTTP with keep-alive, and
what the generated requests write stays out of the other tests' transactions.
Bounded for two shared cores: ``YDT_SCHEMATHESIS_EXAMPLES`` examples per
operation and actor (default 5; raise it for a long local run), deterministic
unless ``YDT_SCHEMATHESIS_RANDOM=1``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine
from app.main import create_app
from app.models.enums import StaffRole
from app.openapi import build_openapi
from app.reference import service as reference_service
from app.staff import service as staff_service
from app.staff.schemas import StaffCreate
from tests import support
from tests.conftest import make_settings
from tests.factories import PASSWORD
from tests.fake_wechat import FakeWeChat

EXAMPLES = int(os.environ.get("YDT_SCHEMATHESIS_EXAMPLES", "5"))
RANDOM = os.environ.get("YDT_SCHEMATHESIS_RANDOM") == "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
ACCOUNTS = [
    ("st.admin", StaffRole.admin, None),
    ("st.zhang", StaffRole.supervisor, "XZ-511702005"),
]

# A body refused for its size (413) is refused too, not "accepted negative data".
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
schema = schemathesis.openapi.from_dict(
    build_openapi(),
    config=schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
    ),
)


@dataclass(frozen=True)
class Server:
    url: str
    tokens: dict[str, str]


async def _prepare(url: str) -> None:
    engine = create_engine(make_settings(database_url=url), url=url)
    now = datetime.now(UTC)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await reference_service.seed(s, now=now)
            for username, role, unit in ACCOUNTS:
                await staff_service.create_staff(
                    s,
                    StaffCreate(
                        username=username,
                        password=PASSWORD,
                        role=role,
                        display_name=username,
                        unit_code=unit,
                    ),
                    now=now,
                )
            await s.commit()
    finally:
        await engine.dispose()


def _in_thread(fn: Any) -> None:
    """Run ``fn`` (which may use asyncio.run) off pytest-asyncio's loop thread."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    wechat_server: FakeWeChat,
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    pg_name: str | None = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{root / 'api.db'}"
    else:
        available: list[bool] = []
        _in_thread(lambda: available.append(asyncio.run(support.postgres_available())))
        if not available[0]:
            if support.IN_CI:
                pytest.fail("PostgreSQL is mandatory under CI")
            pytest.skip("PostgreSQL not reachable")
        created: list[tuple[str, str]] = []
        _in_thread(lambda: created.append(asyncio.run(support.create_pg_database())))
        pg_name, url = created[0]
    _in_thread(lambda: support.alembic_upgrade(url))
    _in_thread(lambda: asyncio.run(_prepare(url)))

    app_settings = make_settings(
        database_url=url,
        media_dir=root / "media",
        wechat_api_base=wechat_server.url,
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_timeout_seconds=0.5,
        dev_login_enabled=True,
        log_level="CRITICAL",
    )
    port = support.free_port()
    app = create_app(app_settings, configure_logs=False)
    uv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", access_log=False)
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        support.wait_for_port(port)
        with httpx.Client(base_url=base) as c:
            resident = c.post(
                "/api/v1/auth/wechat-login",
                json={"code": "ok-st-resident", "scene": "511702005001"},
            )
            assert resident.status_code == 200, resident.text
            admin = c.post(
                "/api/v1/staff/auth/login", json={"username": "st.admin", "password": PASSWORD}
            )
            assert admin.status_code == 200, admin.text
        yield Server(
            url=base,
            tokens={
                "resident": resident.json()["access_token"],
                "admin": admin.json()["access_token"],
            },
        )
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        if pg_name is not None:
            name = pg_name
            _in_thread(lambda: asyncio.run(support.drop_pg_database(name)))


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("actor", ["resident", "admin"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
    database=None,
)
def test_api_answers_as_documented(
    case: schemathesis.Case, actor: str, server: Server, http: requests.Session
) -> None:
    case.call_and_validate(
        base_url=server.url,
        session=http,
        headers={"Authorization": f"Bearer {server.tokens[actor]}"},
        checks=CHECKS,
        timeout=30,
    )

