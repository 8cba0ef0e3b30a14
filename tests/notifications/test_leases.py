"""Two workers and one notice: a lease that ran out and was taken over is
not renewed by its first holder, so the notice goes out once (docs/deployment.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.core.clock import FixedClock
from app.models import Notification
from app.notifications import delivery
from tests.conftest import make_settings
from tests.fake_wechat import FakeWeChat
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
KINDS = ("filed", "accepted", "rejected", "replied", "resolved", "closed", "reopened")


async def test_a_lease_taken_over_is_not_renewed_and_the_notice_goes_out_once(
    app: FastAPI, client: AsyncClient, wechat: FakeWeChat, clock: FixedClock
) -> None:
    resident = await citizen(client, "lease-1")
    filed = await file_case(client, resident)
    maker = app.state.sessionmaker
    lease = timedelta(seconds=10)
    t0 = clock.now() + timedelta(seconds=1)
    first = await delivery.claim(maker, worker_id="A", now=t0, lease=lease)
    async with maker() as s:
        nid = (
            await s.execute(select(Notification.id).where(Notification.complaint_id == filed["id"]))
        ).scalar_one()
    assert nid in first
    # While A's lease runs, B gets nothing of it.
    assert nid not in await delivery.claim(maker, worker_id="B", now=t0 + lease / 2, lease=lease)
    later = t0 + lease + timedelta(seconds=1)
    assert nid in await delivery.claim(maker, worker_id="B", now=later, lease=lease)
    async with maker() as s:  # A, slow, comes back to send it: its lease is gone
        assert not await delivery._renew(s, nid, worker_id="A", now=later, lease=lease)
    async with maker() as s:
        assert await delivery._renew(s, nid, worker_id="B", now=later, lease=lease)

    settings = make_settings(
        wechat_api_base=wechat.url,
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_templates={k: f"tpl-{k}" for k in KINDS},
        notify_lease_seconds=10,
    )
    # B's lease runs out too (it died); C delivers, once.
    done = await delivery.deliver(
        maker, app.state.wechat, settings, worker_id="C", now=later + 2 * lease
    )
    assert done.sent >= 1
    async with maker() as s:
        n = await s.get(Notification, nid)
        assert n is not None and (n.status, n.attempts, n.claimed_by) == ("sent", 1, None)
    sends = [
        body
        for _, path, body in wechat.requests
        if path == "/cgi-bin/message/subscribe/send"
        and body.get("page") == f"pages/complaint/detail?id={filed['id']}"
    ]
    assert len(sends) == 1
