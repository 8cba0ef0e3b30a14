"""A live app on a database of its own (``committing_engine``), whose requests really commit.

Race tests need it: two requests racing inside one rolled-back test
transaction would share a connection and could not race. What these tests
write stays in that database for the run, so they use their own village
(立信社区, 青花镇) and unique names. Import the fixtures (``live``, ``http``) into the
test module that uses them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.clock import FixedClock
from app.core.db import close_hot_connections
from app.core.storage.local import LocalMediaStore
from app.main import create_app
from app.models import Notification
from app.models.enums import StaffRole
from app.staff import service as staff_service
from app.staff.schemas import StaffCreate
from tests.conftest import make_settings
from tests.factories import PASSWORD, login
from tests.fake_wechat import FakeWeChat

VILLAGE = "511781101002"  # 立信社区 → 青花镇纪委
UNIT = "XZ-511781101"
TEMPLATES = {k: f"tmpl-{k}" for k in ("filed", "accepted", "rejected", "replied", "resolved")}


@pytest.fixture
async def live(
    committing_engine: AsyncEngine,
    clock: FixedClock,
    local_store: LocalMediaStore,
    wechat: FakeWeChat,
) -> AsyncIterator[FastAPI]:
    engine = committing_engine
    settings = make_settings(
        database_url=engine.url.render_as_string(hide_password=False),
        wechat_api_base=wechat.url,
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_timeout_seconds=2,
        wechat_templates=TEMPLATES,
        notify_backoff_seconds=60,
    )
    app = create_app(
        settings, clock=clock, engine=engine, media_store=local_store, configure_logs=False
    )
    await local_store.start()
    yield app
    await app.state.wechat.aclose()
    # What the app's lifespan (not run here) does when it stops.
    await close_hot_connections(app.state.read_sessionmaker)


@pytest.fixture
async def http(live: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=live), base_url="http://live") as c:
        yield c


async def staff_account(
    live: FastAPI, role: StaffRole = StaffRole.supervisor, unit: str = UNIT
) -> str:
    """A new staff account (password ``PASSWORD``); its username."""
    name = f"live.{uuid.uuid4().hex[:8]}"
    async with live.state.sessionmaker() as s:
        await staff_service.create_staff(
            s,
            StaffCreate(
                username=name, password=PASSWORD, role=role, display_name=name, unit_code=unit
            ),
            now=live.state.clock.now(),
        )
        await s.commit()
    return name


async def new_staff(
    live: FastAPI, http: AsyncClient, role: StaffRole = StaffRole.supervisor, unit: str = UNIT
) -> dict[str, str]:
    return await login(http, await staff_account(live, role, unit))


async def new_supervisor(live: FastAPI, http: AsyncClient) -> dict[str, str]:
    return await new_staff(live, http)


async def new_resident(http: AsyncClient) -> dict[str, str]:
    code = f"ok-live{uuid.uuid4().hex[:8]}"
    resp = await http.post("/api/v1/auth/wechat-login", json={"code": code})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def new_case(http: AsyncClient, resident: dict[str, str] | None = None) -> dict[str, str]:
    resp = await http.post(
        "/api/v1/complaints",
        headers=resident or await new_resident(http),
        json={
            "item_code": "0101",
            "region_code": VILLAGE,
            "content": "村里账目一直不公开，群众意见很大。",
            "anonymous": False,
            "contact_name": "赵某",
            "contact_phone": "13700001234",
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def work(
    http: AsyncClient, cid: str, steps: list[tuple[dict[str, str], str, dict[str, object]]]
) -> int:
    """Run staff actions in order; the case's version after the last."""
    v = 1
    for who, action, body in steps:
        r = await http.post(
            f"/api/v1/staff/complaints/{cid}/actions/{action}",
            headers=who,
            json={"expected_version": v, **body},
        )
        assert r.status_code == 200, r.text
        v = r.json()["version"]
    return v


async def resolved_live_case(
    live: FastAPI, http: AsyncClient, resident: dict[str, str]
) -> tuple[str, dict[str, str]]:
    staff = await new_supervisor(live, http)
    cid = (await new_case(http, resident))["id"]
    await work(http, cid, [(staff, "accept", {}), (staff, "resolve", {"public_reply": "已公开"})])
    return cid, staff


async def closed_live_case(live: FastAPI, http: AsyncClient) -> str:
    """A case closed with its four signatures (two different leaders)."""
    sup = await new_supervisor(live, http)
    lead1 = await new_staff(live, http, StaffRole.leader)
    lead2 = await new_staff(live, http, StaffRole.leader)
    cid = (await new_case(http))["id"]
    await work(
        http,
        cid,
        [
            (sup, "accept", {}),
            (sup, "resolve", {"public_reply": "已公开"}),
            (sup, "sign", {"slot": "handler"}),
            (sup, "sign", {"slot": "complainant", "note": "电话确认"}),
            (lead1, "sign", {"slot": "supervising_leader"}),
            (lead2, "sign", {"slot": "principal_leader"}),
        ],
    )
    return cid


async def settle_outbox(live: FastAPI) -> None:
    """Earlier live tests leave pending notices; mark them done so counts are exact."""
    async with live.state.sessionmaker() as s:
        await s.execute(
            update(Notification)
            .where(Notification.status.in_(["pending", "retry"]))
            .values(status="sent")
        )
        await s.commit()
