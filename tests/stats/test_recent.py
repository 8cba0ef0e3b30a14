"""The class-case alert's running 30-day counts (app/stats/recent.py) always
equal the sum of stats_daily over the window they name, as the day turns,
after a rebuild, for every scope the alert is read in."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.models import StatsDaily, StatsRecentCluster, StatsRecentWindow
from app.stats import projector, ranking, recent, rollup, service
from tests.stats.scenario import relogin, resident, staff
from tests.workflow.helpers import file_case

pytestmark = pytest.mark.usefixtures("seeded")

# Villages of three townships; items kept by the township unit (0101, 0105)
# and by the county commission (0106), so rows differ by unit as well.
VILLAGES = ("511702001001", "511702002001", "511702005001")
ITEMS = ("0101", "0105", "0106")


def session_on(connection: AsyncConnection) -> AsyncSession:
    return AsyncSession(bind=connection, join_transaction_mode="create_savepoint")


async def drained(connection: AsyncConnection, now: datetime) -> None:
    async with session_on(connection) as s:
        await projector.drain(s, now=now)
        await s.commit()


async def running(connection: AsyncConnection) -> dict[tuple[int, str, str], int]:
    async with session_on(connection) as s:
        rows = (await s.execute(select(StatsRecentCluster))).scalars().all()
    return {(r.unit_id, r.item_code, r.township_code): r.received for r in rows if r.received}


async def summed(connection: AsyncConnection, last_day: date) -> dict[tuple[int, str, str], int]:
    """What the running rows must be: stats_daily over the window, per unit and in total."""
    out: dict[tuple[int, str, str], int] = defaultdict(int)
    async with session_on(connection) as s:
        rows = (
            await s.execute(
                select(StatsDaily).where(
                    StatsDaily.day.between(recent.first_day(last_day), last_day)
                )
            )
        ).scalars()
        for r in rows:
            out[(r.unit_id, r.item_code, r.township_code)] += r.received
            out[(recent.ALL_UNITS, r.item_code, r.township_code)] += r.received
    return {k: v for k, v in out.items() if v}


async def file_spread(client: AsyncClient, tag: str, per_resident: int = 4) -> list[str]:
    """Cases over three townships and three items (and so several units)."""
    ids = []
    for v, village in enumerate(VILLAGES):
        r = await resident(client, f"rc.{tag}.{v}", village)
        for k in range(per_resident):
            filed = await file_case(client, r, item_code=ITEMS[(v + k) % 3], region_code=village)
            ids.append(filed["id"])
    return ids


async def test_running_counts_equal_the_daily_sum_for_every_scope(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    await staff(client, connection)
    await file_spread(client, "a")
    clock.advance(timedelta(days=3))
    await file_spread(client, "b", per_resident=3)
    now = clock.now()
    today = rollup.local_date(now)
    await drained(connection, now)

    async with session_on(connection) as s:
        assert await recent.counted_through(s) == today
    live = await running(connection)
    assert live and live == await summed(connection, today)

    assert {t for _, _, t in live} == {v[:9] + "000" for v in VILLAGES}
    units = sorted({u for u, _, _ in live} - {recent.ALL_UNITS})
    assert len(units) >= 2, "the data should reach more than one unit"
    scopes = [
        service.Scope(),
        service.Scope(prefix="511702"),
        service.Scope(prefix="511702005"),
        service.Scope(prefix="511703"),  # nothing there
        *(service.Scope(unit_id=u) for u in units),
    ]
    async with session_on(connection) as s:
        for scope in scopes:
            for n in (1, 2, 3, 5):
                fast = await ranking._largest_recent(s, scope, n, today)
                slow = await ranking._largest_summed(s, scope, recent.first_day(today), today, n)
                assert fast == slow, (scope, n)
        assert await ranking._largest_recent(s, service.Scope(), 1, today), "nothing read"
        # Another window than the one counted: not answered from the total.
        for day in (today - timedelta(days=1), today + timedelta(days=1)):
            assert await ranking._largest_recent(s, service.Scope(), 1, day) is None
        # The window counted, nothing that large: an empty answer, not a fallback.
        assert await ranking._largest_recent(s, service.Scope(), 10_000, today) == []


async def test_the_window_slides_when_the_day_turns(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    await staff(client, connection)
    filed_on = rollup.local_date(clock.now())
    r = await resident(client, "rc.slide", VILLAGES[2])
    ids = [
        (await file_case(client, r, item_code="0105", region_code=VILLAGES[2]))["id"]
        for _ in range(5)
    ]
    await drained(connection, clock.now())
    key = (recent.ALL_UNITS, "0105", "511702005000")
    assert (await running(connection)).get(key, 0) >= 5

    # Day 30 of the window still counts the filing day; day 31 does not. The
    # projector slides the window on a pass with nothing queued.
    start = clock.now()
    for days, counted in ((29, True), (30, False)):
        clock.set(start + timedelta(days=days))
        now = clock.now()
        await drained(connection, now)
        today = rollup.local_date(now)
        assert today == filed_on + timedelta(days=days)
        async with session_on(connection) as s:
            assert await recent.counted_through(s) == today
        live = await running(connection)
        assert live == await summed(connection, today)
        assert (key in live) is counted

    # Today's rankings no longer raise the alert; one ending on the filing day
    # (summed from stats_daily) still does, with the same cases.
    county = (await relogin(client)).county
    body = (await client.get("/api/v1/staff/stats/rankings?min_cases=1", headers=county)).json()
    assert not {c for a in body["alerts"] if a["kind"] == "cluster" for c in a["complaint_ids"]} & {
        *ids
    }
    past = (
        await client.get(
            f"/api/v1/staff/stats/rankings?min_cases=1&from={filed_on}&to={filed_on}",
            headers=county,
        )
    ).json()
    alerts = [a for a in past["alerts"] if a["kind"] == "cluster" and a["item_code"] == "0105"]
    assert alerts and set(ids) <= {c for a in alerts for c in a["complaint_ids"]}


async def test_receipts_applied_late_land_only_in_their_window(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    """A batch applied long after its events (a worker down for weeks) adds
    to stats_daily on the day received, and to the window only if that day is
    in it."""
    await staff(client, connection)
    await drained(connection, clock.now())
    await file_spread(client, "late", per_resident=2)  # queued, not applied
    clock.advance(timedelta(days=40))
    r = await resident(client, "rc.fresh", VILLAGES[0])
    await file_case(client, r, item_code="0101", region_code=VILLAGES[0])
    now = clock.now()
    await drained(connection, now)
    today = rollup.local_date(now)
    live = await running(connection)
    assert live == await summed(connection, today)
    assert live == {
        (u, "0101", "511702001000"): 1
        for u in (recent.ALL_UNITS, *{k[0] for k in live if k[0] != recent.ALL_UNITS})
    }


async def test_a_rebuild_counts_the_same_window_again(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    await staff(client, connection)
    await file_spread(client, "rb", per_resident=3)
    now = clock.now()
    await drained(connection, now)
    live = await running(connection)
    assert live
    async with session_on(connection) as s:
        # Rows a bug might have left behind must not survive the recount.
        s.add(StatsRecentCluster(unit_id=999, item_code="9999", township_code="x", received=7))
        await s.flush()
        await rollup.rebuild(s)
        assert await recent.counted_through(s) == rollup.local_date(now)
        await s.commit()
    assert await running(connection) == live


async def test_a_window_of_another_length_is_not_read_and_is_recounted(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    """Rows counted over another length (a release that changed DAYS) are
    neither answered from nor kept: the next pass recounts them."""
    await staff(client, connection)
    await file_spread(client, "len", per_resident=2)
    now = clock.now()
    today = rollup.local_date(now)
    await drained(connection, now)
    live = await running(connection)
    async with session_on(connection) as s:
        await s.execute(update(StatsRecentWindow).values(days=recent.DAYS + 1))
        assert await recent.counted_through(s) is None
        assert await ranking._largest_recent(s, service.Scope(), 1, today) is None
        await s.commit()
    await drained(connection, now)
    async with session_on(connection) as s:
        assert await recent.counted_through(s) == today
        window = await s.get(StatsRecentWindow, recent.WINDOW)
        assert window is not None and window.days == recent.DAYS
    assert await running(connection) == live
