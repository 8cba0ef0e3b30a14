"""The process's bound on filing statements in flight (``driver.FILING_GATE``,
``YDT_FILING_STATEMENTS_IN_FLIGHT``), against a live app that really commits:
filings beyond it wait in the process for their turn, not on the day's
counter row, and every one of them is still written, numbered without a gap.
Straight to PostgreSQL only: behind PgBouncer and on SQLite the filing runs in
the writer's transaction, which the gate does not cover."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import driver
from app.core.db import autocommit_allowed, get_filing_session
from app.models import Complaint
from tests.conftest import make_settings
from tests.workflow.live import VILLAGE, live

__all__ = ["live"]  # the live app's fixture, used by name

pytestmark = pytest.mark.usefixtures("seeded")

BODY = {
    "item_code": "0101",
    "region_code": VILLAGE,
    "content": "村里的账目半年没有公开了。",
    "anonymous": True,
}


async def new_resident(live: FastAPI) -> AsyncClient:
    """A resident signed in from an address of their own: the live database
    keeps every test's logins and filings, and the per-address limits count
    them all."""
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    client = AsyncClient(
        transport=ASGITransport(app=live, client=(address, 1)), base_url="http://live"
    )
    resp = await client.post(
        "/api/v1/auth/wechat-login", json={"code": f"ok-gate{secrets.token_hex(4)}"}
    )
    assert resp.status_code == 200, resp.text
    client.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    return client


async def _file(resident: AsyncClient) -> Any:
    try:
        return await resident.post("/api/v1/complaints", json=BODY)
    finally:
        await resident.aclose()


def _gate(live: FastAPI) -> asyncio.Semaphore:
    gate = live.state.read_sessionmaker.filing_gate
    assert isinstance(gate, asyncio.Semaphore)
    return gate


postgresql_only = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)


async def _cases_numbered(live: FastAPI, numbers: list[str]) -> int:
    async with live.state.sessionmaker() as s:
        found = await s.scalar(
            select(func.count()).select_from(Complaint).where(Complaint.tracking_no.in_(numbers))
        )
    return int(found or 0)


@postgresql_only
async def test_a_filing_waits_in_the_process_while_the_gate_is_full(
    live: FastAPI,
) -> None:
    gate = _gate(live)
    permits = live.state.settings.filing_statements_in_flight
    resident = await new_resident(live)
    async with live.state.sessionmaker() as s:
        before = int(await s.scalar(select(func.count()).select_from(Complaint)) or 0)
    for _ in range(permits):
        await gate.acquire()
    released = False
    try:
        filing = asyncio.create_task(_file(resident))
        done, _ = await asyncio.wait({filing}, timeout=0.5)
        assert not done, "the filing went past a full gate"
        async with live.state.sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Complaint)) == before
        for _ in range(permits):
            gate.release()
        released = True
        resp = await asyncio.wait_for(filing, timeout=10)
    finally:
        if not released:
            for _ in range(permits):
                gate.release()
    assert resp.status_code == 201, resp.text
    assert await _cases_numbered(live, [resp.json()["tracking_no"]]) == 1


@postgresql_only
async def test_concurrent_filings_through_a_gate_of_one_are_all_written_without_a_gap(
    live: FastAPI,
) -> None:
    live.state.read_sessionmaker.filing_gate = asyncio.Semaphore(1)
    residents = [await new_resident(live) for _ in range(12)]
    answers = await asyncio.gather(*(_file(r) for r in residents))
    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers]
    numbers = sorted(a.json()["tracking_no"] for a in answers)
    serials = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert serials == list(range(serials[0], serials[0] + 12))
    assert await _cases_numbered(live, numbers) == 12
    assert not _gate(live).locked()  # its one permit given back


@postgresql_only
async def test_a_cancelled_filing_gives_its_turn_back(live: FastAPI) -> None:
    gate = asyncio.Semaphore(1)
    live.state.read_sessionmaker.filing_gate = gate
    await gate.acquire()
    waiting = asyncio.create_task(_file(await new_resident(live)))
    await asyncio.sleep(0.3)
    assert not waiting.done(), "the filing went past a full gate"
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.release()
    assert not gate.locked()  # the cancelled waiter took no permit with it
    resp = await _file(await new_resident(live))
    assert resp.status_code == 201, resp.text


async def test_the_session_carries_the_gate_in_autocommit_only(live: FastAPI) -> None:
    # A filing's request: a JSON body, which the session does not read first.
    request: Any = type(
        "R", (), {"app": live, "method": "POST", "headers": {"content-type": "application/json"}}
    )()
    sessions = cast(AsyncGenerator[AsyncSession, None], get_filing_session(request))
    session = await anext(sessions)
    try:
        carried = session.info.get(driver.FILING_GATE)
    finally:
        await sessions.aclose()
    if autocommit_allowed(live.state.engine, live.state.settings):
        assert carried is _gate(live)
    else:
        # Behind PgBouncer the whole session holds the turn; SQLite has none.
        assert carried is None


@pytest.mark.parametrize("value", [0, -1, 65, "many", 1.5])
def test_the_setting_refuses_what_is_not_a_small_count(value: object) -> None:
    with pytest.raises(ValidationError):
        make_settings(filing_statements_in_flight=value)
