"""One reminder to rate, per handling round, to a resident who has not rated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.feedback import reminders
from app.models import Notification
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, act, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def _reminders(app: FastAPI, cid: str) -> list[Notification]:
    async with app.state.sessionmaker() as s:
        stmt = select(Notification).where(
            Notification.complaint_id == cid, Notification.kind == reminders.KIND
        )
        return list((await s.execute(stmt)).scalars())


async def test_a_resolved_unrated_case_gets_one_reminder_after_the_delay(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    await make_staff(connection, "rm.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    sup = await login(client, "rm.sup")
    resident = await citizen(client, "rm-1")
    rated_resident = await citizen(client, "rm-2")
    quiet = await file_case(client, resident)
    rated = await file_case(client, rated_resident)
    for cid in (quiet["id"], rated["id"]):
        assert (await act(client, sup, cid, "accept", 1)).status_code == 200
        done = await act(client, sup, cid, "resolve", 2, public_reply="已公开账目")
        assert done.status_code == 200, done.text
    ok = await client.post(
        f"/api/v1/complaints/{rated['id']}/rating",
        headers=rated_resident,
        json={"score": 5, "satisfaction": "satisfied"},
    )
    assert ok.status_code == 201, ok.text
    settings = app.state.settings
    async with app.state.sessionmaker() as s:
        early = clock.now() + timedelta(days=1)
        assert await reminders.remind(s, now=early, settings=settings) == 0
        await s.commit()
    later = clock.now() + timedelta(days=settings.rating_reminder_days, minutes=1)
    async with app.state.sessionmaker() as s:
        await reminders.remind(s, now=later, settings=settings)
        await s.commit()
    async with app.state.sessionmaker() as s:  # once per round, not every tick
        await reminders.remind(s, now=later + timedelta(days=5), settings=settings)
        await s.commit()
    sent = await _reminders(app, quiet["id"])
    assert len(sent) == 1 and sent[0].data and sent[0].data["tracking_no"] == quiet["tracking_no"]
    assert await _reminders(app, rated["id"]) == []
