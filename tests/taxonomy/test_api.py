from __future__ import annotations

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.usefixtures("seeded")


async def test_taxonomy_lists_83_categories_and_517_items(client: AsyncClient) -> None:
    resp = await client.get("/api/v1/taxonomy")
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["categories"]) == 83 and body["item_count"] == 517
    item = body["categories"][0]["items"][0]
    assert {
        "code",
        "name",
        "description",
        "class",
        "class_label",
        "scope",
        "tier",
        "department",
    } <= set(item)
    assert sum(len(c["items"]) for c in body["categories"]) == 517


async def test_taxonomy_is_cacheable_with_an_etag(client: AsyncClient) -> None:
    first = await client.get("/api/v1/taxonomy")
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = await client.get("/api/v1/taxonomy", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await client.get("/api/v1/taxonomy", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200


async def test_item_search_by_chinese_substring(client: AsyncClient) -> None:
    items = (await client.get("/api/v1/taxonomy/items", params={"q": "低保"})).json()["items"]
    assert items and all(
        "低保" in (i["name"] + "".join(i["keywords"]) + i["description"]) for i in items
    )
    assert "低保" in items[0]["name"]


async def test_item_search_by_pinyin_initials(client: AsyncClient) -> None:
    items = (await client.get("/api/v1/taxonomy/items", params={"q": "dbjz"})).json()["items"]
    assert items, "dbjz should find 低保救助"
    assert any("低保" in i["name"] for i in items[:5])


async def test_item_search_by_full_pinyin(client: AsyncClient) -> None:
    items = (await client.get("/api/v1/taxonomy/items", params={"q": "dibao"})).json()["items"]
    assert any("低保" in i["name"] for i in items[:5])


@pytest.mark.parametrize("q", ["", "x" * 51])
async def test_bad_search_is_422(client: AsyncClient, q: str) -> None:
    assert (await client.get("/api/v1/taxonomy/items", params={"q": q})).status_code == 422


async def test_search_with_no_hits_is_empty(client: AsyncClient) -> None:
    body = (await client.get("/api/v1/taxonomy/items", params={"q": "量子计算机"})).json()
    assert body["items"] == []


async def test_suggest_returns_five_ranked_items(client: AsyncClient) -> None:
    text = "我们社区组长收了每户6800元天然气安装费，三年了也没人来安装，钱也不退"
    body = (await client.post("/api/v1/taxonomy/suggest", json={"text": text})).json()
    assert len(body["suggestions"]) == 5
    scores = [s["score"] for s in body["suggestions"]]
    assert scores[0] == 1.0 and scores == sorted(scores, reverse=True)
    assert body["suggestions"][0]["matched"]


@pytest.mark.parametrize(
    "payload", [{"text": ""}, {"text": "   "}, {}, {"text": "x" * 2001}, {"text": 5}]
)
async def test_bad_suggest_payloads_are_422(client: AsyncClient, payload: object) -> None:
    assert (await client.post("/api/v1/taxonomy/suggest", json=payload)).status_code == 422


async def test_gibberish_suggests_nothing_rather_than_failing(client: AsyncClient) -> None:
    body = (await client.post("/api/v1/taxonomy/suggest", json={"text": "?!?!"})).json()
    assert body["suggestions"] == []
