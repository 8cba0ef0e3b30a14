"""Search finds words inside the rows, but only what residents can read."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.disclosures.helpers import (
    PUBLIC,
    VILLAGE,
    finance,
    finance_rows,
    people,
    published,
    subsidy,
)

pytestmark = pytest.mark.usefixtures("seeded")


def hospitality() -> dict[str, object]:
    rows = finance_rows()
    rows[2]["subject"] = "来客招待用餐"  # only this row says 招待
    rows[2]["note"] = "付ABC酒店"
    return finance(rows=rows)


async def titles(client: AsyncClient, q: str) -> list[str]:
    r = await client.get(PUBLIC, params={"region_code": VILLAGE, "q": q})
    assert r.status_code == 200, r.text
    return [d["title"] for d in r.json()["items"]]


async def test_a_word_only_in_a_row_finds_its_disclosure(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await published(client, p, hospitality())
    assert "招待" not in d["title"] + d["body"]
    assert await titles(client, "招待") == [d["title"]]
    assert await titles(client, "来客招待") == [d["title"]]
    assert await titles(client, "记-003") == [d["title"]]  # a voucher number, ASCII
    assert await titles(client, "村道维修") == [d["title"]]
    assert await titles(client, "abc酒店") == [d["title"]]  # case does not matter
    assert await titles(client, "不存在的词") == []


async def test_masked_values_and_json_keys_never_match(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await published(client, p, subsidy(body="有疑问可拨打 13912345678 咨询"))
    assert await titles(client, "耕地地力") == [d["title"]]
    # What the masks hide must not be confirmed by a search.
    for hidden in ("张三明", "三明", "欧阳小明", "11010519491231002X", "13912345678", "1234"):
        assert await titles(client, hidden) == [], hidden
    for key in ("id_number", "amount", "name", "subject", "\\u"):
        assert await titles(client, key) == [], key


async def test_paging_counts_only_real_matches(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    # Three that say 招待 in a row, interleaved with two whose raw text only
    # matches through a masked name (三明): those must not take a page slot.
    made = []
    for i in range(3):
        made.append(await published(client, p, hospitality() | {"period": f"2026-0{i + 1}"}))
        await published(client, p, subsidy(period=f"202{i}"))
    newest_first = [d["title"] for d in reversed(made)]
    first = await client.get(PUBLIC, params={"region_code": VILLAGE, "q": "招待", "limit": 2})
    body = first.json()
    assert [d["title"] for d in body["items"]] == newest_first[:2]
    assert body["next_cursor"] == "2"
    second = await client.get(
        PUBLIC, params={"region_code": VILLAGE, "q": "招待", "limit": 2, "cursor": "2"}
    )
    assert [d["id"] for d in second.json()["items"]] == [made[0]["id"]]
    assert second.json()["next_cursor"] is None
