"""The queue finds cases by meaning; the class-case alert groups by text."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.stats.scenario import staff
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

LAMPS = [
    "三组那边的路灯坏了好久了，晚上黑得很",
    "三组的路灯一直不亮，晚上走路看不到",
    "我们三组路口的路灯坏了一个多月没人修",
    "三组路灯晚上不亮，娃儿放学黑黢黢的",
    "三组那几盏路灯坏了，喊了好几回都没人来修",
]
OTHERS = [
    "村里的财务收支好几个季度都没有公开了",
    "组长收了每户两百块修路钱，路没修",
    "低保名单里有开门市的人",
    "养猪场的粪水排到河沟里，臭得很",
    "学校食堂的饭菜有馊味",
]


async def test_the_queue_finds_a_case_by_meaning_not_only_by_exact_words(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "qs.r1")
    lamp = await file_case(client, r, item_code="6104", content=LAMPS[0])
    money = await file_case(client, r, item_code="0101", content=OTHERS[0])

    async def found(q: str) -> set[str]:
        resp = await client.get("/api/v1/staff/complaints", params={"q": q}, headers=s.county)
        assert resp.status_code == 200, resp.text
        return {i["id"] for i in resp.json()["items"]}

    assert "路灯不亮" not in LAMPS[0]
    assert await found("路灯不亮") == {lamp["id"]}
    assert await found("财务不公开") == {money["id"]}  # every word, in another order
    assert await found(lamp["tracking_no"]) == {lamp["id"]}
    assert await found("黑得很") == {lamp["id"]}  # the exact words still work
    assert await found("幼儿园收费") == set()


async def test_class_case_alerts_group_look_alike_reports_within_an_item_and_township(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "qs.r2")
    lamps = [(await file_case(client, r, item_code="0105", content=t))["id"] for t in LAMPS]
    for t in OTHERS:
        await file_case(client, r, item_code="0105", content=t)
    body = (await client.get("/api/v1/staff/stats/rankings?min_cases=1", headers=s.county)).json()
    clusters = [a for a in body["alerts"] if a["kind"] == "cluster" and a["item_code"] == "0105"]
    assert len(clusters) == 1, clusters
    assert set(clusters[0]["complaint_ids"]) == set(lamps)
    assert "内容相近 5 件" in clusters[0]["title"]
