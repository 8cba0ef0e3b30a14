"""Notices are sent to WeChat with no transaction open.

On the embedded default (SQLite) every writer's transaction holds the
database's write lock, and `ydt worker` runs beside `ydt serve` in another
process: a delivery that kept its transaction open across the subscribe
call held every resident's filing for up to a WeChat timeout. The notice
stays the worker's by its lease meanwhile (tests/notifications/test_leases.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.clock import FixedClock
from app.notifications import delivery
from tests.fake_wechat import FakeWeChat
from tests.moderation.test_write_lock import prober
from tests.workflow.live import live, new_case
from tests.write_lock import http

__all__ = ["http", "live"]  # the live app's fixtures, used by name

pytestmark = [
    pytest.mark.usefixtures("seeded"),
    pytest.mark.parametrize("engine", ["sqlite"], indirect=True),
]


async def test_no_write_lock_while_a_notice_is_sent_to_wechat(
    live: FastAPI, http: AsyncClient, wechat: FakeWeChat, clock: FixedClock
) -> None:
    await new_case(http)
    found: list[bool] = []
    wechat.on_subscribe = prober(live, found)
    done = await delivery.deliver(
        live.state.sessionmaker,
        live.state.wechat,
        live.state.settings,
        worker_id="lock-probe",
        now=clock.now() + timedelta(seconds=1),
    )
    assert done.sent >= 1
    assert found and all(found), found
