from __future__ import annotations

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.usefixtures("seeded")


async def test_region_with_its_path(client: AsyncClient) -> None:
    resp = await client.get("/api/v1/regions/511702005001")
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == "双鱼湖社区" and body["level"] == "village"
    assert [p["name"] for p in body["path"]] == ["达州市", "通川区", "凤北街道", "双鱼湖社区"]
    assert body["full_name"] == "达州市通川区凤北街道双鱼湖社区"


async def test_children_of_the_city_are_its_seven_counties(client: AsyncClient) -> None:
    body = (await client.get("/api/v1/regions/511700000000/children")).json()
    names = {r["name"] for r in body["items"]}
    assert names == {"通川区", "达川区", "宣汉县", "开江县", "大竹县", "渠县", "万源市"}
    assert body["next_cursor"] is None


async def test_children_paginate(client: AsyncClient) -> None:
    first = (await client.get("/api/v1/regions/511702000000/children?limit=2")).json()
    assert len(first["items"]) == 2 and first["next_cursor"] == "2"
    second = (
        await client.get(
            f"/api/v1/regions/511702000000/children?limit=2&cursor={first['next_cursor']}"
        )
    ).json()
    assert {r["code"] for r in first["items"]}.isdisjoint({r["code"] for r in second["items"]})


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/v1/regions/511702999999", 404, "region_not_found"),
        ("/api/v1/regions/abc", 400, "bad_request"),
        ("/api/v1/regions/51170200500", 400, "bad_request"),
        ("/api/v1/regions/511702005001/children?limit=0", 422, None),
        ("/api/v1/regions/511702005001/children?cursor=-1", 422, None),
    ],
)
async def test_bad_region_requests(
    client: AsyncClient, path: str, status: int, error: str | None
) -> None:
    resp = await client.get(path)
    assert resp.status_code == status
    if error:
        assert resp.json()["error"] == error


async def test_scene_resolves_to_village_township_county(client: AsyncClient) -> None:
    body = (await client.get("/api/v1/scenes/511702005001")).json()
    assert body["village"]["name"] == "双鱼湖社区"
    assert body["township"]["name"] == "凤北街道"
    assert body["county"]["name"] == "通川区"
    assert body["city"]["name"] == "达州市"


@pytest.mark.parametrize("scene", ["nope", "511702005000", "x" * 40, "双鱼湖", "x" * 65])
async def test_unknown_scene_is_404_in_chinese(client: AsyncClient, scene: str) -> None:
    resp = await client.get(f"/api/v1/scenes/{scene}")
    if len(scene) > 64:  # longer than any WeChat scene: a shape error
        assert resp.status_code == 422
        return
    assert resp.status_code == 404
    assert resp.json()["error"] == "scene_not_found" and "二维码" in resp.json()["detail"]
