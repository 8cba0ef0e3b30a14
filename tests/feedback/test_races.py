"""Feedback under concurrency, against a live app that really commits: the
loser of a race gets 409 and nothing it did is kept (never a 500 from a
unique constraint)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.models import Callback, ComplaintEvent
from app.models.enums import StaffRole
from tests.workflow.live import closed_live_case, new_staff

pytestmark = pytest.mark.usefixtures("seeded")
COMMISSION = "JW-511781"  # 万源市纪委监委, above the live village's township


async def test_two_overlapping_draws_never_draw_a_case_twice(
    live: FastAPI, http: AsyncClient
) -> None:
    cid = await closed_live_case(live, http)
    a = await new_staff(live, http, unit=COMMISSION)
    b = await new_staff(live, http, unit=COMMISSION)
    results = await asyncio.gather(
        *(http.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=h) for h in (a, b))
    )
    assert {r.status_code for r in results} <= {201, 409}, [r.text for r in results]
    assert any(r.status_code == 201 for r in results)
    for r in results:
        if r.status_code == 409:
            assert "抽样" in r.json()["detail"]
    async with live.state.sessionmaker() as s:
        drawn = (
            await s.execute(
                select(func.count()).select_from(Callback).where(Callback.complaint_id == cid)
            )
        ).scalar_one()
    assert drawn == 1


async def test_two_cadres_recording_one_callback_one_wins(
    live: FastAPI, http: AsyncClient
) -> None:
    cid = await closed_live_case(live, http)
    a = await new_staff(live, http, unit=COMMISSION)
    b = await new_staff(live, http, StaffRole.leader, unit=COMMISSION)
    d = await http.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=a)
    assert d.status_code == 201, d.text
    listed = await http.get(f"/api/v1/staff/callbacks?draw_id={d.json()['draw_id']}", headers=a)
    cb = next(x for x in listed.json()["items"] if x["complaint_id"] == cid)
    url = f"/api/v1/staff/callbacks/{cb['id']}"
    verdicts = [
        {"method": "phone", "reached": True, "resolved": True, "satisfaction": "satisfied"},
        {"method": "on_site", "reached": True, "resolved": False, "fake_closure": True,
         "satisfaction": "unsatisfied", "note": "现场核实：公示栏仍为空"},
    ]  # fmt: skip
    results = await asyncio.gather(
        *(http.post(url, headers=h, json=v) for h, v in zip((a, b), verdicts, strict=True))
    )
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    winner = next(r.json() for r in results if r.status_code == 200)
    async with live.state.sessionmaker() as s:
        row = await s.get(Callback, cb["id"])
        recorded = (
            await s.execute(
                select(func.count())
                .select_from(ComplaintEvent)
                .where(ComplaintEvent.complaint_id == cid, ComplaintEvent.kind == "callback")
            )
        ).scalar_one()
    assert row is not None and recorded == 1
    assert (row.method, row.fake_closure) == (winner["method"], winner["fake_closure"])
