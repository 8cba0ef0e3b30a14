"""``members.one_of``: the same rows as ``IN``, with one statement text for
any number of values on PostgreSQL (the statistics projector's batches)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import members
from app.models import Region

pytestmark = pytest.mark.usefixtures("seeded")


async def _codes(session: AsyncSession, wanted: list[str]) -> list[str]:
    found = await session.execute(
        select(Region.code)
        .where(members.one_of(session, Region.code, wanted))
        .order_by(Region.code)
    )
    return list(found.scalars())


async def test_same_rows_as_in(session: AsyncSession) -> None:
    every = list((await session.execute(select(Region.code).order_by(Region.code))).scalars())
    assert len(every) > 3
    wanted = [every[0], every[2], "no-such-region", every[-1]]
    expected = list(
        (
            await session.execute(
                select(Region.code).where(Region.code.in_(wanted)).order_by(Region.code)
            )
        ).scalars()
    )
    assert await _codes(session, wanted) == expected == [every[0], every[2], every[-1]]


async def test_none_and_duplicates(session: AsyncSession) -> None:
    assert await _codes(session, []) == []
    code = (await session.execute(select(Region.code).limit(1))).scalar_one()
    assert await _codes(session, [code, code]) == [code]


async def test_hostile_values_are_data(session: AsyncSession) -> None:
    # Quotes, braces and commas are array syntax on PostgreSQL: bound, never spliced.
    odd = ["x'); DROP TABLE regions; --", '{"a","b"}', "a,b", "\\", ""]
    assert await _codes(session, odd) == []
    assert (await session.execute(select(Region.code).limit(1))).scalar_one()


async def test_one_statement_whatever_the_count(session: AsyncSession) -> None:
    texts = {
        str(
            select(Region.code)
            .where(members.one_of(session, Region.code, [f"c{i}" for i in range(n)]))
            .compile(dialect=session.get_bind().dialect)
        )
        for n in (1, 10, 1000)
    }
    assert len(texts) == 1
    # PostgreSQL binds one array; SQLite keeps IN, expanded into a new text when run.
    expanded = "POSTCOMPILE" in texts.pop()
    assert expanded is (session.get_bind().dialect.name != "postgresql")
