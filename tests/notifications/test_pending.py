"""A notice that cannot be sent for want of configuration waits, is counted,
and goes out once the configuration arrives (no silent, final 'skipped')."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models import Notification
from app.models.enums import StaffRole
from app.notifications.delivery import deliver
from tests.conftest import make_settings
from tests.console.helpers import signed_in
from tests.factories import login, make_staff
from tests.fake_wechat import FakeWeChat
from tests.workflow.helpers import TOWN_UNIT, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
ALL_KINDS = ("filed", "accepted", "rejected", "replied", "resolved", "closed", "reopened")


async def _notice(app: FastAPI, complaint_id: str) -> Notification:
    async with app.state.sessionmaker() as s:
        return (
            await s.execute(select(Notification).where(Notification.complaint_id == complaint_id))
        ).scalar_one()


async def test_unconfigured_notice_waits_is_counted_and_goes_out_once_configured(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    clock: FixedClock,
) -> None:
    resident = await citizen(client, "pending-1")
    filed = await file_case(client, resident)
    # The app has WeChat credentials but no template ids: nothing can be sent.
    first = await deliver(
        app.state.sessionmaker, app.state.wechat, app.state.settings, worker_id="w", now=clock.now()
    )
    assert first.skipped == 0
    n = await _notice(app, filed["id"])
    assert (n.status, n.attempts) == ("pending", 0)

    ready = (await client.get("/readyz")).json()
    assert any("条群众通知" in w and "YDT_WECHAT_TEMPLATES" in w for w in ready["warnings"])

    await make_staff(connection, "pending.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    sup = await login(client, "pending.sup")
    listed = (await client.get("/api/v1/staff/notifications/failures", headers=sup)).json()
    mine = [x for x in listed["items"] if x["complaint_id"] == filed["id"]]
    assert len(mine) == 1 and mine[0]["status"] == "pending" and mine[0]["waiting"] is True
    # The console's inbox counts it for the cadres who may see the case.
    await signed_in(client, "pending.sup")
    inbox = await client.get("/console/inbox")
    assert inbox.status_code == 200 and "条群众通知因未配置微信订阅消息" in inbox.text
    assert "等待配置" in inbox.text and filed["tracking_no"] in inbox.text

    configured = make_settings(
        wechat_api_base=wechat.url,
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_templates={k: f"tpl-{k}" for k in ALL_KINDS},
    )
    later = clock.now() + timedelta(minutes=1)
    second = await deliver(
        app.state.sessionmaker, app.state.wechat, configured, worker_id="w", now=later
    )
    assert second.sent >= 1
    n = await _notice(app, filed["id"])
    assert (n.status, n.attempts) == ("sent", 1)
    sent = [
        q
        for _, p, q in wechat.requests
        if p == "/cgi-bin/message/subscribe/send" and q["template_id"] == "tpl-filed"
    ]
    data = {k: v["value"] for k, v in sent[-1]["data"].items()}
    assert data["character_string1"] == filed["tracking_no"]  # whole, never cut
    assert data["phrase2"] == "已登记"
    assert 1 <= len(data["thing3"]) <= 20  # the unit's name
    assert data["time4"].startswith("2026年11月24日")


async def test_a_missing_recipient_is_still_final_and_listed(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    """Configuration cannot fix a notice with nobody to receive it: skipped."""
    resident = await citizen(client, "pending-2")
    filed = await file_case(client, resident)
    async with app.state.sessionmaker() as s:
        n = (
            await s.execute(select(Notification).where(Notification.complaint_id == filed["id"]))
        ).scalar_one()
        n.recipient_id = 2**31 - 1
        await s.commit()
    configured = make_settings(
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_templates={k: f"tpl-{k}" for k in ALL_KINDS},
    )
    stats = await deliver(
        app.state.sessionmaker, app.state.wechat, configured, worker_id="w", now=clock.now()
    )
    assert stats.skipped >= 1
    n = await _notice(app, filed["id"])
    assert (n.status, n.last_error) == ("skipped", "收件人不存在")
