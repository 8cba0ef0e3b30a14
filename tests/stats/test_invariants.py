"""Figures that add up, whatever happens to the cases (property-based).

Hypothesis draws sequences of what really happens to cases: filing, accepting,
assigning, replying, extending, escalating, resolving, the four signatures,
residents' verdicts (an unsatisfied one reopens), staff reopening, callbacks
finding a fake closure, and days or months passing. After each sequence:

- every rate of every breakdown, the totals, the public figures and the
  rankings lies within 0..1;
- closed <= received over all time, unsolved <= closed (solved >= 0), and the
  totals count cases, once each, as the complaints table does;
- ``ydt stats rebuild`` gives exactly the rollups the live path kept.

Each example runs inside a SAVEPOINT rolled back at its end, within the test's
own rolled-back transaction: one database, a clean world per example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.models import (
    Callback,
    CallbackDraw,
    Complaint,
    Rating,
)
from app.models.enums import ComplaintStatus, StaffRole
from app.stats import rollup
from tests.conftest import DEFAULT_NOW
from tests.factories import login, make_staff
from tests.stats.test_rebuild import open_due, snapshot
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, act

pytestmark = pytest.mark.usefixtures("seeded")

COUNTY_UNIT = "JW-511702"
WORK = ("resolve", "resolve", "resolve", "assign", "reply", "extend", "escalate")
# What may happen next to a case, by its status; repeats weight the usual path,
# so that sequences reach closing, verdicts and reopening, not only filing.
MOVES: dict[str, tuple[str, ...]] = {
    "submitted": ("accept", "accept", "accept", "reject", "escalate", "reclassify"),
    "escalated": ("accept", "accept", "reject"),
    "accepted": WORK,
    "assigned": WORK,
    "in_progress": WORK,
    "reopened": WORK,
    "resolved": ("close", "close", "rate_satisfied", "rate_basic", "rate_unsatisfied", "reopen"),
    "closed": ("rate_satisfied", "rate_unsatisfied", "fake_closure", "fake_closure", "reopen"),
    "rejected": ("file",),
}
STEPS = ("case", "case", "case", "case", "case", "case", "file", "wait")
RATES = (
    "closure_rate",
    "solved_rate",
    "satisfaction_rate",
    "on_time_rate",
    "reopen_rate",
)

# Every table the live path writes and the rebuild recomputes, whatever is added.
ROLLUPS = rollup.ROLLUP_TABLES
# (what happens, which case, which move for its status, a number of days or a score)
step_st = st.tuples(
    st.sampled_from(STEPS), st.integers(0, 7), st.integers(0, 9), st.integers(1, 40)
)


@dataclass
class World:
    """The people acting, and what the test knows of each case."""

    client: AsyncClient
    connection: AsyncConnection
    clock: FixedClock
    staff: dict[str, dict[str, str]] = field(default_factory=dict)
    cadres: dict[str, int] = field(default_factory=dict)
    resident: dict[str, str] = field(default_factory=dict)
    cases: list[str] = field(default_factory=list)

    async def people(self, create: bool) -> None:
        names = {
            TOWN_UNIT: ("iv.zhang", "iv.wang", "iv.chen"),
            COUNTY_UNIT: ("iv.county", "iv.cwang", "iv.cchen"),
        }
        for unit, (sup, lead1, lead2) in names.items():
            if create:
                user = await make_staff(self.connection, sup, StaffRole.supervisor, unit_code=unit)
                self.cadres[unit] = user.id
                for leader in (lead1, lead2):
                    await make_staff(self.connection, leader, StaffRole.leader, unit_code=unit)
            for name in (sup, lead1, lead2):
                self.staff[name] = await login(self.client, name)
        body = (
            await self.client.post(
                "/api/v1/auth/wechat-login",
                json={"code": "ok-iv.resident", "scene": VILLAGE},
            )
        ).json()
        self.resident = {"Authorization": f"Bearer {body['access_token']}"}

    def team(self, unit_code: str) -> tuple[dict[str, str], ...] | None:
        if unit_code == TOWN_UNIT:
            return self.staff["iv.zhang"], self.staff["iv.wang"], self.staff["iv.chen"]
        if unit_code == COUNTY_UNIT:
            return self.staff["iv.county"], self.staff["iv.cwang"], self.staff["iv.cchen"]
        return None  # escalated beyond the county: nobody here acts on it

    async def case(self, cid: str) -> dict[str, Any]:
        resp = await self.client.get(
            f"/api/v1/staff/complaints/{cid}", headers=self.staff["iv.county"]
        )
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]


def ok(resp: Response) -> None:
    """Refusals (a rule said no) are fine; a server error never is."""
    assert resp.status_code < 500, resp.text
    assert resp.status_code in (200, 201, 400, 403, 404, 409), resp.text


async def play(w: World, kind: str, pick: int, move: int, n: int) -> None:
    if kind == "wait":
        w.clock.set(w.clock.now() + timedelta(days=n))
        await w.people(create=False)  # tokens expire when time passes
        return
    if kind == "file" or not w.cases:
        await file(w, pick)
        return
    cid = w.cases[pick % len(w.cases)]
    cf = await w.case(cid)
    moves = MOVES[cf["status"]]
    await act_on(w, cid, cf, moves[move % len(moves)], pick, n)


async def file(w: World, pick: int) -> None:
    resp = await w.client.post(
        "/api/v1/complaints",
        headers=w.resident,
        json={
            "item_code": ("0101", "0103", "0105")[pick % 3],
            "region_code": VILLAGE,
            "content": "村里的财务收支好几个季度都没有公开了，请核查。",
            "anonymous": False,
            "contact_name": "李大姐",
            "contact_phone": "13900001111",
        },
    )
    assert resp.status_code == 201, resp.text
    w.cases.append(resp.json()["id"])


async def act_on(w: World, cid: str, cf: dict[str, Any], action: str, pick: int, n: int) -> None:
    if action == "file":
        await file(w, pick)
        return
    """One move the case's status allows (MOVES): the service may still refuse it
    (a second verdict in one round, a signature already given), never with a 5xx."""
    version = cf["version"]
    if action.startswith("rate_"):
        ok(
            await w.client.post(
                f"/api/v1/complaints/{cid}/rating",
                headers=w.resident,
                json={"score": 1 + n % 5, "satisfaction": action.removeprefix("rate_")},
            )
        )
        return
    if action == "fake_closure":
        await fake_callback(w, cid)
        return
    team = w.team(cf["unit"]["code"])
    if team is None:
        return
    sup, lead1, lead2 = team
    if action == "close":
        for who, slot in (
            (sup, "handler"),
            (sup, "complainant"),
            (lead1, "supervising_leader"),
            (lead2, "principal_leader"),
        ):
            resp = await act(w.client, who, cid, "sign", version, slot=slot, note="电话确认")
            ok(resp)
            if resp.status_code == 200:
                version = resp.json()["version"]
        return
    body: dict[str, Any] = {"note": "办理情况"}
    if action == "assign":
        body["cadre_id"] = w.cadres.get(cf["unit"]["code"], 1)
    if action == "extend":
        body["days"] = 1 + n % 5
    if action == "reclassify":
        # Another item of the same unit, or a county-scope one (another unit),
        # or the same item (refused): the case's counts move with its item.
        body["item_code"] = ("0101", "0105", "0106")[n % 3]
    ok(await act(w.client, sup, cid, action, version, **body))


async def fake_callback(w: World, cid: str) -> None:
    """A commission's callback that finds the closure faked (it reopens the case).

    The draw itself is random; the test records a callback for this very case,
    as the commission would once the draw picked it (once per case).
    """
    async with AsyncSession(bind=w.connection, join_transaction_mode="create_savepoint") as s:
        c = await s.get(Complaint, cid)
        assert c is not None
        if (await s.execute(select(Callback.id).where(Callback.complaint_id == cid))).first():
            return  # a case is drawn for a callback once
        draw = CallbackDraw(
            quarter="2026Q4",
            scope_region="511702000000",
            seed="iv",
            fraction=0.2,
            population=1,
            drawn=1,
            created_by=w.cadres[COUNTY_UNIT],
            created_at=w.clock.now(),
        )
        s.add(draw)
        await s.flush()
        cb = Callback(
            draw_id=draw.id,
            complaint_id=cid,
            unit_id=c.unit_id,
            status="pending",
            fake_closure=False,
            note="",
        )
        s.add(cb)
        await s.flush()
        callback_id = cb.id
        await s.commit()
    ok(
        await w.client.post(
            f"/api/v1/staff/callbacks/{callback_id}",
            headers=w.staff["iv.county"],
            json={
                "method": "phone",
                "reached": True,
                "resolved": False,
                "satisfaction": "unsatisfied",
                "fake_closure": True,
                "note": "群众反映问题并未解决",
            },
        )
    )


def check_figures(f: dict[str, Any], where: str) -> None:
    for rate in RATES:
        value = f[rate]
        assert value is None or 0 <= value <= 1, f"{where}: {rate} = {value} ({f})"
    assert f["closed"] <= f["received"], (where, f)
    assert f["unsolved"] <= f["closed"], (where, f)
    assert f["closed_on_time"] <= f["closed"], (where, f)
    assert f["satisfied"] + f["basic"] + f["unsatisfied"] == f["rated"], (where, f)
    assert f["reopened"] <= f["accepted"] <= f["received"], (where, f)


async def check_world(w: World) -> None:
    county = w.staff["iv.county"]
    overview = await w.client.get("/api/v1/staff/stats/overview", headers=county)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    check_figures(body["totals"], "totals")
    for part in ("by_month", "by_category", "by_item", "by_unit", "by_region"):
        for b in body[part]:
            check_figures(b["figures"], f"{part} {b['key']}")
    # A period cut in the middle of the history counts each case once too.
    months = [b["key"] for b in body["by_month"]]
    if months:
        half = await w.client.get(
            f"/api/v1/staff/stats/overview?from={months[0]}-01&to={months[len(months) // 2]}-28",
            headers=county,
        )
        assert half.status_code == 200, half.text
        check_figures(half.json()["totals"], "half period")
    public = (await w.client.get(f"/api/v1/stats/public?region_code={VILLAGE}")).json()
    for rate in ("closure_rate", "solved_rate", "satisfaction_rate"):
        assert public[rate] is None or 0 <= public[rate] <= 1, public
    ranks = await w.client.get(
        "/api/v1/staff/stats/rankings?from=2026-01-01&to=2028-12-31&min_cases=1", headers=county
    )
    assert ranks.status_code == 200, ranks.text
    for u in ranks.json()["units"]:
        check_figures(u["figures"], f"ranking {u['unit_name']}")
        assert u["reasons"], u

    # The totals are counts of cases, each once, as the complaints table has them.
    t = body["totals"]
    async with AsyncSession(bind=w.connection, join_transaction_mode="create_savepoint") as s:
        cases = (await s.execute(select(Complaint))).scalars().all()
        rated = set((await s.execute(select(Rating.complaint_id))).scalars())
    assert t["received"] == len(cases)
    assert t["closed"] == sum(c.status is ComplaintStatus.closed for c in cases)
    assert t["rated"] == len(rated)
    assert t["reopened"] == sum(c.reopen_count > 0 for c in cases)

    live = {m: await snapshot(w.connection, m) for m in ROLLUPS}
    live_open = await open_due(w.connection)
    async with AsyncSession(bind=w.connection, join_transaction_mode="create_savepoint") as s:
        await rollup.rebuild(s)
        await s.commit()
    for m, rows in live.items():
        assert await snapshot(w.connection, m) == rows, f"rebuild differs in {m}"
    assert await open_due(w.connection) == live_open


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # the same examples on every run and both databases
    # Each example is a few hundred requests: shrinking a failure would take many
    # minutes, and the steps of the failing example are printed (note) instead.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step_st, min_size=6, max_size=20))
async def test_rates_stay_within_bounds_and_the_rebuild_agrees(
    client: AsyncClient,
    connection: AsyncConnection,
    clock: FixedClock,
    steps: list[tuple[str, int, int, int]],
) -> None:
    note(f"steps: {steps}")
    example = await connection.begin_nested()
    clock.set(DEFAULT_NOW)
    w = World(client, connection, clock)
    try:
        await w.people(create=True)
        for kind, pick, move, n in [("file", 0, 0, 1), *steps]:
            await play(w, kind, pick, move, n)
        await check_world(w)
    finally:
        await example.rollback()
