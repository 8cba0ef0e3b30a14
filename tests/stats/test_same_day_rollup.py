"""两个当天 as rollups: the tables the projector and the notification sender
keep answer exactly what reading every case and its outbox answers, for any
region, unit and period; a rebuild and the migration's fill write the same
rows; a recount applied twice moves nothing."""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.models import (
    Complaint,
    Notification,
    StatsSameDay,
    StatsSameDayMark,
    StatsSameDayTown,
    SupervisionUnit,
)
from app.models.enums import Channel
from app.notifications.delivery import deliver
from app.stats import projector, rollup, same_day
from tests.conftest import make_settings
from tests.fake_wechat import FakeWeChat
from tests.stats.scenario import close, relogin, staff
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
TZ = ZoneInfo("Asia/Shanghai")
KINDS = ("filed", "accepted", "rejected", "replied", "resolved", "closed", "reopened")
DAY1 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 local
DAY2 = DAY1 + timedelta(days=1)
TABLES = (StatsSameDay, StatsSameDayTown, StatsSameDayMark)


def _settings(wechat: FakeWeChat) -> Any:
    return make_settings(
        wechat_api_base=wechat.url,
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_templates={k: f"tpl-{k}" for k in KINDS},
    )


async def _hold(app: FastAPI, cid: str, kind: str, until: datetime) -> None:
    """Keep one case's filer notice of ``kind`` from going out before ``until``."""
    async with app.state.sessionmaker() as s:
        await s.execute(
            update(Notification)
            .where(
                Notification.complaint_id == cid,
                Notification.kind == kind,
                Notification.recipient_kind == "citizen",
                Notification.status == "pending",
            )
            .values(next_attempt_at=until)
        )
        await s.commit()


async def _accept(client: AsyncClient, who: dict[str, str], cid: str) -> None:
    v = (await case(client, who, cid))["version"]
    resp = await act(client, who, cid, "accept", v)
    assert resp.status_code == 200, resp.text


async def _world(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, wechat: FakeWeChat,
    clock: FixedClock,
) -> dict[str, str]:  # fmt: skip
    """Cases accepted and closed over two local days, told on time, late, or
    only through a follower; an anonymous case, an accusation, a phone case."""
    settings = _settings(wechat)
    sm, wc = app.state.sessionmaker, app.state.wechat

    async def send(at: datetime) -> None:
        await deliver(sm, wc, settings, worker_id="w", now=at)

    clock.set(DAY1)
    s = await staff(client, connection)
    names = ("prompt", "late", "closed", "followed", "escalated", "never")
    ids = {n: (await file_case(client, await citizen(client, f"sdr-{n}")))["id"] for n in names}
    ids["anonymous"] = (
        await file_case(
            client, await citizen(client, "sdr-anon"), anonymous=True,
            contact_name=None, contact_phone=None,
        )
    )["id"]  # fmt: skip
    ids["accusation"] = (
        await file_case(client, await citizen(client, "sdr-acc"), accused_level="village")
    )["id"]
    follower = await citizen(client, "sdr-follower")
    resp = await client.post(f"/api/v1/complaints/{ids['followed']}/follow", headers=follower)
    assert resp.status_code in (200, 201), resp.text
    for n in ("prompt", "late", "followed", "never", "anonymous"):
        await _accept(client, s.zhang, ids[n])
    acc = await case(client, s.county, ids["accusation"])
    who = s.county if acc["unit"]["code"] == "JW-511702" else s.zhang
    await _accept(client, who, ids["accusation"])
    v = (await case(client, s.zhang, ids["escalated"]))["version"]
    resp = await act(client, s.zhang, ids["escalated"], "escalate", v, note="上报")
    assert resp.status_code == 200, resp.text
    await _hold(app, ids["late"], "accepted", DAY2)
    await _hold(app, ids["followed"], "accepted", DAY2 + timedelta(days=5))
    await _hold(app, ids["never"], "accepted", DAY2 + timedelta(days=30))
    await close(client, s, ids["closed"])  # accepted and closed on day 1
    await send(DAY1 + timedelta(minutes=5))
    # Day 2 (local): the late acceptance reaches its resident; the escalated
    # case is accepted by the county; the closed case is reopened and closed
    # again, its new closure told that day.
    clock.set(DAY2)
    s = await relogin(client)
    await _accept(client, s.county, ids["escalated"])
    v = (await case(client, s.zhang, ids["closed"]))["version"]
    for who, action, body in (
        (s.zhang, "reopen", {"note": "重办"}),
        (s.zhang, "resolve", {"note": "再次办结"}),
        (s.zhang, "sign", {"slot": "handler"}),
        (s.zhang, "sign", {"slot": "complainant", "note": "电话确认"}),
        (s.wang, "sign", {"slot": "supervising_leader"}),
        (s.chen, "sign", {"slot": "principal_leader"}),
    ):
        resp = await act(client, who, ids["closed"], action, v, **body)
        assert resp.status_code == 200, (action, resp.text)
        v = resp.json()["version"]
    await send(DAY2 + timedelta(minutes=5))
    return ids


async def _scan(
    session: AsyncSession, prefix: str, unit_id: int | None, lo: date | None, hi: date | None
) -> tuple[int, int, int, int]:
    """The figure read the slow way: every case and its outbox, in Python."""
    notes = (await session.execute(select(Notification))).scalars().all()
    out = {"accepted": [0, 0], "closed": [0, 0]}
    for c in (await session.execute(select(Complaint))).scalars():
        if c.channel != Channel.online or c.anonymous or c.historical:
            continue
        if not c.region_code.startswith(prefix) or (unit_id is not None and c.unit_id != unit_id):
            continue
        for kind, at in (("accepted", c.accepted_at), ("closed", c.closed_at)):
            if at is None:
                continue
            day = at.astimezone(TZ).date()
            if (lo and day < lo) or (hi and day > hi):
                continue
            out[kind][0] += 1
            out[kind][1] += any(
                n.complaint_id == c.id and n.kind == kind and n.status == "sent"
                and n.recipient_kind == "citizen" and n.recipient_id == c.citizen_id
                and n.sent_at is not None and n.sent_at.astimezone(TZ).date() == day
                for n in notes
            )  # fmt: skip
    return out["accepted"][0], out["accepted"][1], out["closed"][0], out["closed"][1]


async def _tables(connection: AsyncConnection) -> dict[str, set[tuple[Any, ...]]]:
    """The three tables' rows, without rows of zeros (a moved case leaves one)."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        for model in TABLES:
            cols = [c.name for c in model.__table__.columns]
            rows = (await s.execute(select(model))).scalars().all()
            out[model.__tablename__] = {
                tuple(getattr(r, c) for c in cols)
                for r in rows
                if model is StatsSameDayMark or any(getattr(r, c) for c in same_day.COUNTERS)
            }
    return out


async def test_rollups_equal_the_scan_for_every_region_unit_and_period(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, wechat: FakeWeChat,
    clock: FixedClock,
) -> None:  # fmt: skip
    ids = await _world(app, client, connection, wechat, clock)
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await projector.drain(s, now=clock.now())
        town_unit = (
            await s.execute(select(SupervisionUnit.id).where(SupervisionUnit.code == TOWN_UNIT))
        ).scalar_one()
        county_unit = (
            await s.execute(select(SupervisionUnit.id).where(SupervisionUnit.code == "JW-511702"))
        ).scalar_one()
        d1, d2 = date(2026, 11, 24), date(2026, 11, 25)
        checked = 0
        for prefix in ("5117", "511702", VILLAGE[:9], "511703"):
            for unit in (None, town_unit, county_unit):
                for lo, hi in ((None, None), (d1, d1), (d2, d2), (d1, d2), (d2, None), (None, d1)):
                    got = await same_day.same_day_feedback(
                        s, prefix=prefix, unit_id=unit, date_from=lo, date_to=hi
                    )
                    want = await _scan(s, prefix, unit, lo, hi)
                    assert (
                        got.accepted, got.accepted_same_day, got.closed, got.closed_same_day
                    ) == want, (prefix, unit, lo, hi)  # fmt: skip
                    checked += sum(want)
        assert checked, "the world counted nothing"
        # By hand, day 1 in the township: prompt, late, followed, never, closed and
        # the accusation accepted (the anonymous case is not real-name); prompt,
        # closed and the accusation told that day; the follower's notice tells
        # the follower, not the filer.
        day1 = await same_day.same_day_feedback(
            s, prefix=VILLAGE[:9], unit_id=None, date_from=d1, date_to=d1
        )
        assert (day1.accepted, day1.accepted_same_day) == (6, 3)
        # Closed on day 1, reopened and closed again on day 2: it counts on day 2.
        assert (day1.closed, day1.closed_same_day) == (0, 0)
        day2 = await same_day.same_day_feedback(
            s, prefix=VILLAGE[:9], unit_id=None, date_from=d2, date_to=d2
        )
        assert (day2.accepted, day2.accepted_same_day) == (1, 1)  # the escalated case
        assert (day2.closed, day2.closed_same_day) == (1, 1)
        marks = {m.complaint_id: m for m in (await s.execute(select(StatsSameDayMark))).scalars()}
        assert ids["anonymous"] not in marks
        assert marks[ids["late"]].accepted_told is False  # told on day 2
        assert marks[ids["followed"]].accepted_told is False
        assert marks[ids["escalated"]].unit_id == county_unit
        await s.commit()


async def test_rebuild_migration_fill_and_a_second_recount_agree(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, wechat: FakeWeChat,
    clock: FixedClock,
) -> None:  # fmt: skip
    ids = await _world(app, client, connection, wechat, clock)
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await projector.drain(s, now=clock.now())
        await s.commit()
    live = await _tables(connection)
    assert live["stats_same_day_marks"], "nothing counted"
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        assert await same_day.recount(s, ids.values()) == 0  # every case is where it counts
        await s.commit()
    assert await _tables(connection) == live
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        await rollup.rebuild(s)
        await s.commit()
    assert await _tables(connection) == live, "the rebuild differs"
    # The migration's fill, on the same cases and outbox.
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        for model in TABLES:
            await s.execute(delete(model))
        await s.commit()
    await connection.run_sync(_run_fill)
    assert await _tables(connection) == live, "the migration's fill differs"


def _migration() -> ModuleType:
    path = next(Path("migrations/versions").glob("*_0020_same_day.py"))
    spec = importlib.util.spec_from_file_location("migration_0020", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_fill(sync_connection: Any) -> None:
    with Operations.context(MigrationContext.configure(sync_connection)):
        _migration().fill()
