"""Races, workers and the audit, against a live app that really commits
(the app and its helpers are in tests/workflow/live.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.audit import verify
from app.core.clock import FixedClock
from app.models import Complaint, ComplaintEvent, Notification, Rating, SupervisionOrder
from app.notifications.delivery import deliver
from app.worker import tick
from tests.fake_wechat import FakeWeChat
from tests.workflow.live import (
    new_case,
    new_resident,
    new_supervisor,
    resolved_live_case,
    settle_outbox,
)

pytestmark = pytest.mark.usefixtures("seeded")


async def test_two_racing_actions_exactly_one_wins(live: FastAPI, http: AsyncClient) -> None:
    a, b = await new_supervisor(live, http), await new_supervisor(live, http)
    case = await new_case(http)
    url = f"/api/v1/staff/complaints/{case['id']}/actions"
    results = await asyncio.gather(
        http.post(f"{url}/accept", headers=a, json={"expected_version": 1}),
        http.post(f"{url}/reject", headers=b, json={"expected_version": 1, "note": "重复反映"}),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    async with live.state.sessionmaker() as s:
        c = await s.get(Complaint, case["id"])
        n_events = (
            await s.execute(
                select(func.count())
                .select_from(ComplaintEvent)
                .where(ComplaintEvent.complaint_id == case["id"])
            )
        ).scalar_one()
    assert c is not None and c.version == 2 and n_events == 3  # filed, routed, and one winner


async def test_red_card_raises_one_order_even_with_two_workers(
    live: FastAPI, http: AsyncClient, clock: FixedClock
) -> None:
    case = await new_case(http)
    async with live.state.sessionmaker() as s:
        due = (await s.get(Complaint, case["id"])).due_at  # type: ignore[union-attr]
    clock.set(due + timedelta(minutes=1))
    makers = [async_sessionmaker(live.state.engine, expire_on_commit=False) for _ in range(2)]
    await asyncio.gather(
        *(
            tick(m, live.state.wechat, live.state.settings, clock, me=f"w{i}")
            for i, m in enumerate(makers)
        )
    )
    await tick(makers[0], live.state.wechat, live.state.settings, clock, me="w0")
    async with live.state.sessionmaker() as s:
        orders = (
            (
                await s.execute(
                    select(SupervisionOrder).where(SupervisionOrder.complaint_id == case["id"])
                )
            )
            .scalars()
            .all()
        )
    assert len(orders) == 1 and orders[0].kind == "automatic" and orders[0].spell_due_at == due


async def test_outbox_survives_a_wechat_that_fails_twice(
    live: FastAPI, http: AsyncClient, wechat: FakeWeChat, clock: FixedClock
) -> None:
    await settle_outbox(live)
    case = await new_case(http)  # writes the "filed" notice
    wechat.subscribe_failures = 2
    maker = live.state.sessionmaker
    first = await deliver(
        maker, live.state.wechat, live.state.settings, worker_id="w", now=clock.now()
    )
    assert (first.claimed, first.retried) == (1, 1)
    early = await deliver(
        maker,
        live.state.wechat,
        live.state.settings,
        worker_id="w",
        now=clock.now() + timedelta(seconds=30),
    )
    assert early.claimed == 0  # backing off
    second = await deliver(
        maker,
        live.state.wechat,
        live.state.settings,
        worker_id="w",
        now=clock.now() + timedelta(seconds=61),
    )
    assert second.retried == 1
    third = await deliver(
        maker,
        live.state.wechat,
        live.state.settings,
        worker_id="w",
        now=clock.now() + timedelta(seconds=61 + 121),
    )
    assert third.sent == 1
    async with maker() as s:
        n = (
            await s.execute(select(Notification).where(Notification.complaint_id == case["id"]))
        ).scalar_one()
    assert (n.status, n.attempts) == ("sent", 3)
    sent = [q for m, p, q in wechat.requests if p == "/cgi-bin/message/subscribe/send"]
    assert (
        sent[-1]["template_id"] == "tmpl-filed"
        and sent[-1]["data"]["character_string1"]["value"] == case["tracking_no"]
    )


async def test_messages_dead_letter_after_the_limit_and_show_up_for_staff(
    live: FastAPI, http: AsyncClient, wechat: FakeWeChat, clock: FixedClock
) -> None:
    await settle_outbox(live)
    case = await new_case(http)
    wechat.subscribe_failures = 100
    now = clock.now()
    for _ in range(live.state.settings.notify_max_attempts):
        await deliver(
            live.state.sessionmaker, live.state.wechat, live.state.settings, worker_id="w", now=now
        )
        now += timedelta(hours=2)
    async with live.state.sessionmaker() as s:
        n = (
            await s.execute(select(Notification).where(Notification.complaint_id == case["id"]))
        ).scalar_one()
    assert (n.status, n.attempts) == ("dead", live.state.settings.notify_max_attempts)
    staff = await new_supervisor(live, http)
    failures = (await http.get("/api/v1/staff/notifications/failures", headers=staff)).json()[
        "items"
    ]
    assert any(f["complaint_id"] == case["id"] and f["status"] == "dead" for f in failures)
    wechat.subscribe_failures = 0


async def test_two_workers_never_send_twice(
    live: FastAPI, http: AsyncClient, wechat: FakeWeChat, clock: FixedClock
) -> None:
    await settle_outbox(live)
    cases = [await new_case(http) for _ in range(12)]
    before = wechat.paths().count("/cgi-bin/message/subscribe/send")
    makers = [async_sessionmaker(live.state.engine, expire_on_commit=False) for _ in range(2)]
    stats = await asyncio.gather(
        *(
            deliver(m, live.state.wechat, live.state.settings, worker_id=f"w{i}", now=clock.now())
            for i, m in enumerate(makers)
        )
    )
    assert sum(s.sent for s in stats) == 12
    assert wechat.paths().count("/cgi-bin/message/subscribe/send") - before == 12
    async with live.state.sessionmaker() as s:
        rows = (
            (
                await s.execute(
                    select(Notification).where(
                        Notification.complaint_id.in_([c["id"] for c in cases])
                    )
                )
            )
            .scalars()
            .all()
        )
    assert all(n.status == "sent" and n.attempts == 1 for n in rows)


async def test_audit_verify_finds_a_tampered_event(live: FastAPI, http: AsyncClient) -> None:
    case = await new_case(http)
    maker = live.state.sessionmaker
    async with maker() as s:
        report = await verify(s)
    assert report.first_break is None and report.cases >= 1
    async with maker() as s:
        event = (
            await s.execute(
                select(ComplaintEvent).where(
                    ComplaintEvent.complaint_id == case["id"], ComplaintEvent.seq == 1
                )
            )
        ).scalar_one()
        original = event.note
        event.note = "已登记（被篡改）"
        await s.commit()
    try:
        async with maker() as s:
            broken = await verify(s)
        assert broken.first_break is not None
        assert (broken.first_break.complaint_id, broken.first_break.seq) == (case["id"], 1)
        assert (
            "edited" in broken.first_break.reason
            and case["tracking_no"] in broken.first_break.render()
        )
    finally:
        async with maker() as s:
            await s.execute(
                update(ComplaintEvent).where(ComplaintEvent.id == event.id).values(note=original)
            )
            await s.commit()
    async with maker() as s:
        deleted = await s.get(ComplaintEvent, event.id)
        assert deleted is not None
        second = (
            await s.execute(
                select(ComplaintEvent).where(
                    ComplaintEvent.complaint_id == case["id"], ComplaintEvent.seq == 2
                )
            )
        ).scalar_one()
        second.seq = 3  # a removed event shows up as a gap
        await s.commit()
    try:
        async with maker() as s:
            gap = await verify(s)
        assert gap.first_break is not None and "missing" in gap.first_break.reason
    finally:
        async with maker() as s:
            await s.execute(
                update(ComplaintEvent).where(ComplaintEvent.id == second.id).values(seq=2)
            )
            await s.commit()


@pytest.mark.parametrize("verdict", ["satisfied", "unsatisfied"])
async def test_twenty_parallel_ratings_one_wins_the_rest_409(
    live: FastAPI, http: AsyncClient, verdict: str
) -> None:
    resident = await new_resident(http)
    cid, _ = await resolved_live_case(live, http, resident)
    results = await asyncio.gather(
        *(
            http.post(
                f"/api/v1/complaints/{cid}/rating",
                headers=resident,
                json={"score": 1 + i % 5, "satisfaction": verdict, "comment": f"第{i}次"},
            )
            for i in range(20)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 19, [(r.status_code, r.text) for r in results]
    assert all(r.json()["error"] for r in results if r.status_code == 409)
    winner = next(r.json() for r in results if r.status_code == 201)
    async with live.state.sessionmaker() as s:
        ratings = (
            (await s.execute(select(Rating).where(Rating.complaint_id == cid))).scalars().all()
        )
        kinds = [
            e.kind
            for e in (
                await s.execute(
                    select(ComplaintEvent)
                    .where(ComplaintEvent.complaint_id == cid)
                    .order_by(ComplaintEvent.seq)
                )
            ).scalars()
        ]
        c = await s.get(Complaint, cid)
        report = await verify(s)
    assert len(ratings) == 1 and ratings[0].comment == winner["comment"]
    assert kinds.count("rated") == 1
    assert c is not None and c.status.value == winner["status"]
    # unsatisfied reopens the case; satisfied signs for the complainant
    last = "reopened" if verdict == "unsatisfied" else "signed"
    assert winner["status"] == ("reopened" if last == "reopened" else "resolved")
    assert kinds[-1] == last
    assert report.first_break is None
