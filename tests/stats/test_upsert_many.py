"""The projector's multi-row upsert: one statement per chunk adds every row's
counters to what is there, inserts what is not, and leaves zeros out."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import StatsTownDay
from app.stats import rollup

pytestmark = pytest.mark.usefixtures("seeded")
DAY = date(2031, 1, 1)  # far from any other test's rows


async def test_upsert_many_adds_inserts_and_spans_chunks(connection: AsyncConnection) -> None:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:

        def key(i: int) -> dict[str, object]:
            return {
                "day": DAY + timedelta(days=i // 40),
                "township_code": f"5117{i % 40:08d}",
                "county_code": "511702000000",
            }

        n = rollup.UPSERT_CHUNK + 37  # two statements
        first = [(key(i), {"received": 1, "accepted": i % 2}) for i in range(n)]
        assert await rollup.upsert_many(s, StatsTownDay, first) == n
        # Again, with another counter in some rows, and a row of zeros (skipped).
        again = [(key(i), {"received": 2, "closed": int(i < 3)}) for i in range(0, n, 7)]
        again.append((key(n + 500), {"received": 0}))
        assert await rollup.upsert_many(s, StatsTownDay, again) == len(again) - 1
        assert await rollup.upsert_many(s, StatsTownDay, []) == 0
        rows = {
            (r.day, r.township_code): (r.received, r.accepted, r.closed)
            for r in (
                await s.execute(select(StatsTownDay).where(StatsTownDay.day >= DAY))
            ).scalars()
        }
        assert len(rows) == n
        for i in range(n):
            k = key(i)
            bumped = i % 7 == 0
            want = (1 + 2 * bumped, i % 2, int(bumped and i < 3))
            assert rows[(k["day"], k["township_code"])] == want, i
        await s.rollback()
