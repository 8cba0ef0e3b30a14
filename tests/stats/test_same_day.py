"""两个当天: the overview says how many real-name cases heard the same day that
they were accepted and closed, and the worker sends those notices first and
retries them within minutes (issue 15, item 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
from tests.factories import login, make_staff
from tests.fake_wechat import FakeWeChat
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, act, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
KINDS = ("filed", "accepted", "rejected", "replied", "resolved", "closed", "reopened")


def configured(wechat: FakeWeChat, **kw: object) -> object:
    return make_settings(
        wechat_api_base=wechat.url,
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_templates={k: f"tpl-{k}" for k in KINDS},
        **kw,
    )


async def test_overview_counts_acceptances_notified_the_same_day(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    clock: FixedClock,
) -> None:
    settings = configured(wechat)
    clock.set(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tuesday 10:00 local
    await make_staff(connection, "sd.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "sd.admin", StaffRole.admin)
    sup, admin = await login(client, "sd.sup"), await login(client, "sd.admin")
    prompt = await file_case(client, await citizen(client, "sd-1"))
    late = await file_case(client, await citizen(client, "sd-2"))
    hidden = await file_case(
        client, await citizen(client, "sd-3"), anonymous=True, contact_name=None, contact_phone=None
    )
    for filed in (prompt, late, hidden):
        assert (await act(client, sup, filed["id"], "accept", 1)).status_code == 200
    # The first acceptance goes out at once; the worker is then down until
    # after midnight, so the second one reaches its resident a day late.
    async with app.state.sessionmaker() as s:
        rows = (
            await s.execute(
                select(Notification).where(
                    Notification.complaint_id == late["id"], Notification.kind == "accepted"
                )
            )
        ).scalar_one()
        rows.next_attempt_at = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 01:00 next day
        await s.commit()
    sm, wc = app.state.sessionmaker, app.state.wechat
    await deliver(sm, wc, settings, worker_id="w", now=clock.now() + timedelta(minutes=1))  # type: ignore[arg-type]
    await deliver(sm, wc, settings, worker_id="w", now=datetime(2026, 11, 24, 17, 1, tzinfo=UTC))  # type: ignore[arg-type]

    clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    admin = await login(client, "sd.admin")
    resp = await client.get(
        "/api/v1/staff/stats/overview",
        headers=admin,
        params={"region_code": VILLAGE, "from": "2026-11-24", "to": "2026-11-24"},
    )
    assert resp.status_code == 200, resp.text
    figure = resp.json()["same_day_feedback"]
    # Two real-name acceptances that day (the anonymous one is not real-name), one told that day.
    assert (figure["accepted"], figure["accepted_same_day"]) == (2, 1)
    assert figure["rate"] == 0.5


async def test_acceptance_notices_go_first_and_retry_within_minutes(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    clock: FixedClock,
) -> None:
    settings = configured(wechat, notify_backoff_seconds=3600)
    await make_staff(connection, "sd.sup2", StaffRole.supervisor, unit_code=TOWN_UNIT)
    sup = await login(client, "sd.sup2")
    filed = await file_case(client, await citizen(client, "sd-4"))
    assert (await act(client, sup, filed["id"], "accept", 1)).status_code == 200
    wechat.subscribe_failures = 10_000  # every send of this round fails
    sm, wc = app.state.sessionmaker, app.state.wechat
    try:
        await deliver(sm, wc, settings, worker_id="w", now=clock.now())  # type: ignore[arg-type]
    finally:
        wechat.subscribe_failures = 0
    tried = [
        q["template_id"]
        for _, p, q in wechat.requests
        if p.endswith("/send") and q["data"]["character_string1"]["value"] == filed["tracking_no"]
    ]
    assert tried == ["tpl-accepted", "tpl-filed"]  # the acceptance went first
    async with sm() as s:
        notices = {
            n.kind: n
            for n in (
                await s.execute(
                    select(Notification).where(Notification.complaint_id == filed["id"])
                )
            ).scalars()
        }
    accepted, filed_notice = notices["accepted"], notices["filed"]
    assert accepted.status == "retry" and filed_notice.status == "retry"
    # The same-day kind retries within ten minutes; the others back off an hour.
    assert accepted.next_attempt_at - clock.now() <= timedelta(minutes=10)
    assert filed_notice.next_attempt_at - clock.now() == timedelta(hours=1)


async def test_same_day_means_the_local_day_not_the_utc_one(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    clock: FixedClock,
) -> None:
    """The database computes the days (Asia/Shanghai, UTC+8): a notice 20
    minutes after a 23:50 acceptance is a day late although UTC sees one day;
    a notice at 08:30 on the day of a 07:00 acceptance is on time although UTC
    sees two."""
    settings = configured(wechat)
    sm, wc = app.state.sessionmaker, app.state.wechat
    await make_staff(connection, "sd.sup3", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "sd.admin3", StaffRole.admin)
    accepted: dict[str, str] = {}
    day24, day25 = datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)
    for name, at, sent in (
        ("late", day24 + timedelta(hours=15, minutes=50), day24 + timedelta(hours=16, minutes=10)),
        ("prompt", day24 + timedelta(hours=23), day25 + timedelta(minutes=30)),
    ):
        clock.set(at)
        sup = await login(client, "sd.sup3")
        filed = await file_case(client, await citizen(client, f"sd-tz-{name}"))
        assert (await act(client, sup, filed["id"], "accept", 1)).status_code == 200
        accepted[name] = filed["id"]
        await deliver(sm, wc, settings, worker_id="w", now=sent)  # type: ignore[arg-type]
    clock.set(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    admin = await login(client, "sd.admin3")

    async def figure(date_from: str, date_to: str) -> tuple[int, int]:
        resp = await client.get(
            "/api/v1/staff/stats/overview",
            headers=admin,
            params={"region_code": VILLAGE, "from": date_from, "to": date_to},
        )
        assert resp.status_code == 200, resp.text
        f = resp.json()["same_day_feedback"]
        return f["accepted"], f["accepted_same_day"]

    assert await figure("2026-11-24", "2026-11-24") == (1, 0)  # 23:50 local, told at 00:10
    assert await figure("2026-11-25", "2026-11-25") == (1, 1)  # 07:00 local, told at 08:30
    assert await figure("2026-11-24", "2026-11-25") == (2, 1)
