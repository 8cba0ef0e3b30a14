"""An unmodified third-party client (``georeport`` from PyPI, which uses
``requests`` and ``xmltodict``) against a live server over real HTTP, in JSON
and in XML mode, on SQLite and on PostgreSQL.

The server is the app under uvicorn on loopback with a database of its own
(migrated and seeded). Three cases are filed before the client looks: one
through Open311 with an api key, and a resident's accusation and anonymous
filing through /api/v1, which the client must never see.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from georeport import GeoReport
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import create_engine
from app.main import create_app
from app.models.enums import StaffRole
from app.reference import service as reference_service
from app.staff import service as staff_service
from app.staff.schemas import StaffCreate
from tests import support
from tests.conftest import make_settings
from tests.factories import PASSWORD
from tests.workflow.helpers import VILLAGE

ADMIN = "gr.admin"
CONTENT = '村委会门口的路灯坏了两个月，晚上出门很不方便 <请> & "尽快" 修好。'


@dataclass(frozen=True)
class Live:
    root: str
    public_id: str
    hidden_ids: tuple[str, ...]


def _in_thread(fn: Any) -> Any:
    """Run ``fn`` (which may use asyncio.run) off pytest-asyncio's loop thread."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


async def _prepare(url: str) -> None:
    engine = create_engine(make_settings(database_url=url), url=url)
    now = datetime.now(UTC)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await reference_service.seed(s, now=now)
            await staff_service.create_staff(
                s,
                StaffCreate(
                    username=ADMIN,
                    password=PASSWORD,
                    role=StaffRole.admin,
                    display_name="管理员",
                ),
                now=now,
            )
            await s.commit()
    finally:
        await engine.dispose()


def _file_cases(base: str) -> tuple[str, tuple[str, ...]]:
    with httpx.Client(base_url=base, timeout=30) as c:
        login = c.post("/api/v1/staff/auth/login", json={"username": ADMIN, "password": PASSWORD})
        h = {"Authorization": f"Bearer {login.json()['access_token']}"}
        key = c.post("/api/v1/staff/integrators", headers=h, json={"name": "12345热线"})
        assert key.status_code == 201, key.text
        filed = c.post(
            "/open311/v2/requests.json",
            data={
                "api_key": key.json()["api_key"],
                "service_code": "0101",
                "address_string": "凤北街道双鱼湖社区",
                "lat": "31.2101",
                "long": "107.5002",
                "description": CONTENT,
                "last_name": "李",
                "first_name": "大姐",
                "phone": "13900002222",
                "attribute[priority][]": "elderly",
            },
        )
        assert filed.status_code == 200, filed.text
        resident = c.post("/api/v1/auth/dev-login", json={"openid": "gr-r", "scene": VILLAGE})
        rh = {"Authorization": f"Bearer {resident.json()['access_token']}"}
        hidden = []
        for extra in (
            {"item_code": "0102", "contact_name": "举报人", "contact_phone": "13900003333"},
            {"item_code": "0101", "anonymous": True},
        ):
            body = {
                "region_code": VILLAGE,
                "content": "村干部把集体资金挪作他用，账上少了好几万",
                **extra,
            }
            resp = c.post("/api/v1/complaints", headers=rh, json=body)
            assert resp.status_code == 201, resp.text
            hidden.append(resp.json()["id"])
        return filed.json()[0]["service_request_id"], tuple(hidden)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    root: Path = tmp_path_factory.mktemp(f"georeport-{request.param}")
    pg_name: str | None = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{root / 'o311.db'}"
    else:
        if not _in_thread(lambda: asyncio.run(support.postgres_available())):
            if support.IN_CI:
                pytest.fail("PostgreSQL is mandatory under CI")
            pytest.skip("PostgreSQL not reachable")
        pg_name, url = _in_thread(lambda: asyncio.run(support.create_pg_database()))
    _in_thread(lambda: support.alembic_upgrade(url))
    _in_thread(lambda: asyncio.run(_prepare(url)))
    port = support.free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        database_url=url,
        media_dir=root / "media",
        dev_login_enabled=True,
        log_level="CRITICAL",
        public_base_url=base,
    )
    uv = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, configure_logs=False),
            host="127.0.0.1",
            port=port,
            log_level="critical",
            access_log=False,
        )
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        support.wait_for_port(port)
        public_id, hidden = _file_cases(base)
        yield Live(root=f"{base}/open311/v2", public_id=public_id, hidden_ids=hidden)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        if pg_name is not None:
            name = pg_name
            _in_thread(lambda: asyncio.run(support.drop_pg_database(name)))


def _as_list(value: Any) -> list[Any]:
    """xmltodict gives a dict for one child and a list for several."""
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_client_lists_services_and_reads_definitions(live: Live, fmt: str) -> None:
    client = GeoReport(live.root, output_format=fmt)
    services = _as_list(client.get_service_list())
    codes = {s["service_code"] for s in services}
    assert "0101" in codes and "0102" not in codes  # no accusation item is offered
    assert len(services) > 300
    [light] = [s for s in services if s["service_code"] == "0101"]
    assert light["service_name"] == "村级财务收支未按期公开"
    assert str(light["metadata"]).lower() == "true" and light["type"] == "realtime"
    definition = client.get_service_definition("0101")
    attributes = definition["attributes"]
    if fmt == "xml":
        attributes = _as_list(attributes["attribute"])
    assert attributes[0]["code"] == "priority"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_client_reads_requests_and_never_sees_protected_ones(live: Live, fmt: str) -> None:
    client = GeoReport(live.root, output_format=fmt)
    listed = _as_list(client.get_service_requests())
    ids = {r["service_request_id"] for r in listed}
    assert live.public_id in ids
    assert not ids & set(live.hidden_ids)
    one = client.get_service_request(live.public_id)
    assert one["service_request_id"] == live.public_id
    assert one["service_code"] == "0101"
    assert one["description"] == CONTENT  # markup characters survive both formats
    assert one["status"] == "open"
    assert one["address_id"] == VILLAGE
    assert float(one["lat"]) == 31.21
    filtered = client.get_service_requests(service_code="0101", status="open")
    assert live.public_id in {r["service_request_id"] for r in _as_list(filtered)}
    by_id = client.get_service_requests(
        service_request_id=",".join([live.public_id, *live.hidden_ids])
    )
    assert [r["service_request_id"] for r in _as_list(by_id)] == [live.public_id]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_client_raises_on_protected_and_unknown_requests(live: Live, fmt: str) -> None:
    import requests

    client = GeoReport(live.root, output_format=fmt)
    for sid in (*live.hidden_ids, "0" * 32):
        with pytest.raises(requests.HTTPError) as raised:
            client.get_service_request(sid)
        assert raised.value.response.status_code == 404
