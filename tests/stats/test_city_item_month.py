"""The city-wide item × month rollup (stats_city_item_month) answers exactly
what item × county × month summed over the counties did.

The city overview reads its item and category breakdowns from the city table
(bench/README.md: 45k rows at 1M cases became 6k); a county's overview keeps
reading its own rows. Both are fed by every rollup write (rollup.coarse_keys),
and the migration fills the city table from the county one, so an upgraded
database is right before any new case arrives.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import create_engine
from app.models import Region, StatsCityItemMonth, StatsItemMonth
from app.models.enums import RegionLevel, StaffRole
from app.models.stats import METRICS
from app.stats import service
from tests import support
from tests.conftest import make_settings
from tests.factories import login, make_staff
from tests.stats.scenario import close, rate, resident, staff
from tests.workflow.helpers import act, case, file_case

pytestmark = pytest.mark.usefixtures("seeded")

# Counts a breakdown carries; the rates are functions of these (and of the
# handling days, compared at the table level below).
COUNTS = (
    "received",
    "accepted",
    "closed",
    "closed_on_time",
    "rated",
    "satisfied",
    "basic",
    "unsatisfied",
    "reopened",
    "fake_closures",
    "unsolved",
    "closed_untimed",
    "open_overdue",
)
OTHER_COUNTY_VILLAGE = "511703001001"  # 达州市达川区三里坪街道三里坪社区


async def _world(client: AsyncClient, connection: AsyncConnection) -> None:
    """Cases in two counties, on several items, in every state the figures see:
    closed and rated, reopened, rejected, reclassified to another item."""
    s = await staff(client, connection)
    here = await resident(client, "cm.here", "511702005001")
    there = await resident(client, "cm.there", OTHER_COUNTY_VILLAGE)
    for item in ("0101", "0101", "0103", "0105"):
        await file_case(client, there, item_code=item, region_code=OTHER_COUNTY_VILLAGE)
    ids = [
        (await file_case(client, here, item_code=item))["id"]
        for item in ("0101", "0101", "0103", "0101", "0105")
    ]
    await close(client, s, ids[0])
    await rate(client, here, ids[0], 5, "satisfied")
    await close(client, s, ids[1])
    await rate(client, here, ids[1], 1, "unsatisfied")  # reopens it
    rejected = await act(client, s.zhang, ids[2], "reject", 1, note="不属于受理范围")
    assert rejected.status_code == 200, rejected.text
    v = (await case(client, s.zhang, ids[3]))["version"]
    moved = await act(client, s.zhang, ids[3], "reclassify", v, item_code="0106")
    assert moved.status_code == 200, moved.text


async def _table(connection: AsyncConnection, model: Any) -> dict[tuple[date, str], list[int]]:
    """Rows of a month table summed to (month, item), zero rows left out."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        rows = (await s.execute(select(model))).scalars().all()
    out: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0] * len(METRICS))
    for r in rows:
        acc = out[(r.month, r.item_code)]
        for i, m in enumerate(METRICS):
            acc[i] += getattr(r, m)
    return {k: v for k, v in out.items() if any(v)}


async def test_city_table_is_the_sum_over_counties(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await _world(client, connection)
    city = await _table(connection, StatsCityItemMonth)
    counties = await _table(connection, StatsItemMonth)
    assert city, "the world produced no statistics"
    assert city == counties


async def test_city_overview_equals_the_sum_of_its_county_overviews(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await _world(client, connection)
    await make_staff(connection, "cm.admin", StaffRole.admin)
    admin = await login(client, "cm.admin")
    url = "/api/v1/staff/stats/overview"
    city = await client.get(url, headers=admin)
    assert city.status_code == 200, city.text
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        counties = list(
            (
                await s.execute(select(Region.code).where(Region.level == RegionLevel.county))
            ).scalars()
        )
    summed: dict[str, dict[str, dict[str, int]]] = {
        "by_item": defaultdict(lambda: dict.fromkeys(COUNTS, 0)),
        "by_category": defaultdict(lambda: dict.fromkeys(COUNTS, 0)),
    }
    for code in counties:
        part = await client.get(f"{url}?region_code={code}", headers=admin)
        assert part.status_code == 200, part.text
        for breakdown, acc in summed.items():
            for row in part.json()[breakdown]:
                for k in COUNTS:
                    acc[row["key"]][k] += row["figures"][k]
    body = city.json()
    for breakdown, acc in summed.items():
        got = {row["key"]: {k: row["figures"][k] for k in COUNTS} for row in body[breakdown]}
        assert got == dict(acc), breakdown
    items = {row["key"]: row["figures"] for row in body["by_item"]}
    # Two counties filed 0101; 0106 holds the reclassified case, 0103 the rejected one.
    assert items["0101"]["received"] == 4 and items["0106"]["received"] == 1
    assert items["0101"]["closed"] == 1 and items["0101"]["reopened"] == 1


async def test_city_breakdowns_match_the_county_table_for_any_period(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    """The service, period by period: the city read returns what summing
    item × county × month returned, every counter (handling days too)."""
    await _world(client, connection)
    periods = [
        (None, None),
        (date(2026, 11, 10), date(2026, 11, 30)),  # mid-month: whole months, both ways
        (date(2026, 12, 1), None),  # after every case: nothing either way
    ]
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        for date_from, date_to in periods:
            new = dict(await service.item_month_rows(s, "5117", date_from, date_to))
            old = dict(
                await service.sum_rows(
                    s,
                    sa.and_(
                        StatsItemMonth.county_code.startswith("5117"),
                        service.in_period(StatsItemMonth, date_from, date_to, monthly=True),
                    ),
                    [StatsItemMonth.item_code],
                    StatsItemMonth,
                )
            )
            assert new == old, (date_from, date_to)
        assert await service.item_month_rows(s, "5117", None, None), "the world counted nothing"
        assert not await service.item_month_rows(s, "5117", date(2026, 12, 1), None)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_the_migration_fills_the_city_table_from_existing_rows(
    tmp_path: Path, dialect: str
) -> None:
    """A database upgraded with history answers the city overview at once."""
    if dialect == "postgresql":
        if not await support.postgres_available():
            if support.IN_CI:
                pytest.fail("PostgreSQL is mandatory under CI")
            pytest.skip("PostgreSQL not reachable")
        name, url = await support.create_pg_database()
    else:
        name, url = "", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    try:
        await asyncio.to_thread(support.alembic_upgrade, url, "0018")
        engine = create_engine(make_settings(database_url=url), url=url)
        try:
            rows = [
                ("2026-10-01", "0101", "511702000000", 3, 2),
                ("2026-10-01", "0101", "511703000000", 4, 1),
                ("2026-11-01", "0101", "511702000000", 1, 0),
                ("2026-10-01", "0103", "511703000000", 2, 2),
            ]
            zeros = ", ".join(m for m in METRICS if m not in ("received", "closed"))
            async with engine.begin() as conn:
                for month, item, county, received, closed in rows:
                    await conn.execute(
                        sa.text(
                            f"insert into stats_item_month (month, item_code, county_code, "
                            f"received, closed, {zeros}) values (:m, :i, :c, :r, :cl, "
                            + ", ".join("0" for m in METRICS if m not in ("received", "closed"))
                            + ")"
                        ),
                        {"m": date.fromisoformat(month), "i": item, "c": county,
                         "r": received, "cl": closed},
                    )  # fmt: skip
            await asyncio.to_thread(support.alembic_upgrade, url, "0019")
            async with engine.connect() as conn:
                got = {
                    (str(r[0]), r[1]): (r[2], r[3])
                    for r in await conn.execute(
                        sa.text(
                            "select month, item_code, received, closed from stats_city_item_month"
                        )
                    )
                }
            assert got == {
                ("2026-10-01", "0101"): (7, 3),
                ("2026-11-01", "0101"): (1, 0),
                ("2026-10-01", "0103"): (2, 2),
            }
            await asyncio.to_thread(support.alembic_downgrade, url, "0018")
            async with engine.connect() as conn:
                tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            assert "stats_city_item_month" not in tables and "stats_item_month" in tables
        finally:
            await engine.dispose()
    finally:
        if name:
            await support.drop_pg_database(name)
