"""The resident site over HTTP: the village page, disclosures, figures, errors."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.wechat.client import WeChatClient
from tests.conftest import make_settings
from tests.disclosures.helpers import finance, finance_rows, people, published, subsidy
from tests.public_site.helpers import HOME, OTHER_VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")


def assert_page(html: str) -> None:
    """No script of any kind, nothing from another host."""
    assert "<script" not in html.lower()
    for url in re.findall(r'(?:href|src|action)="([^"]+)"', html):
        assert url.startswith(("/", "?", "https://wxaurl.cn/")), url


async def test_the_village_page_names_village_and_township(client: AsyncClient) -> None:
    r = await client.get(HOME)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "双鱼湖社区" in r.text and "凤北街道" in r.text
    assert f'href="{HOME}/open"' in r.text  # WeChat is configured in this app
    for path in ("/disclosures", "/stats", "/track"):
        assert f'href="{HOME}{path}"' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert_page(r.text)
    assert len(r.content) < 8_000  # a small page for a weak connection


async def test_without_wechat_the_page_says_how_to_find_the_mini_program(
    app: FastAPI, client: AsyncClient
) -> None:
    await app.state.wechat.aclose()
    app.state.wechat = WeChatClient(make_settings(), app.state.shared_store)
    r = await client.get(HOME)
    assert r.status_code == 200
    assert "/open" not in r.text
    assert "搜索" in r.text and "监督一点通" in r.text


@pytest.mark.parametrize(
    "scene", ["999999999999", "x" * 40, "%E6%9D%91", "..%2F..%2Fetc", "abc%20def", "'or 1=1"]
)
async def test_an_unknown_scene_is_a_friendly_404_page(client: AsyncClient, scene: str) -> None:
    for suffix in ("", "/disclosures", "/stats", "/track", "/open", "/disclosures/1"):
        r = await client.get(f"/q/{scene}{suffix}")
        assert r.status_code == 404, (suffix, r.text)
        assert r.headers["content-type"].startswith("text/html")
        assert "二维码" in r.text
        assert_page(r.text)


async def test_bad_input_never_fails_the_server(client: AsyncClient) -> None:
    for path in (
        f"/q/{'9' * 5000}",
        f"{HOME}/disclosures?q={'招' * 5000}",
        f"{HOME}/disclosures?q=%00%01",
        f"{HOME}/disclosures?page=-1&category=nope",
        f"{HOME}/disclosures?page=99999999999999999999",
        f"{HOME}/disclosures/99999999999999999999",
        f"{HOME}/disclosures/-1",
        f"{HOME}/disclosures/NaN",
        "/q/%01%02",
    ):
        r = await client.get(path)
        assert r.status_code < 500, (path, r.status_code)
    long = await client.get(f"{HOME}/disclosures", params={"q": "招" * 51})
    assert long.status_code == 400 and "不能超过 50 个字" in long.text


async def test_disclosures_list_search_and_detail_masked_like_the_api(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    rows = finance_rows()
    rows[2]["subject"] = "来客招待用餐"
    money = await published(client, p, finance(rows=rows))
    grants = await published(client, p, subsidy(body="有疑问可拨打 13912345678 咨询"))
    listing = await client.get(f"{HOME}/disclosures")
    assert money["title"] in listing.text and grants["title"] in listing.text
    found = await client.get(f"{HOME}/disclosures", params={"q": "招待"})
    assert found.status_code == 200
    assert money["title"] in found.text and grants["title"] not in found.text
    assert "没有找到" in (await client.get(f"{HOME}/disclosures", params={"q": "张三明"})).text

    page = await client.get(f"{HOME}/disclosures/{grants['id']}")
    api = (await client.get(f"/api/v1/disclosures/{grants['id']}")).json()
    assert page.status_code == 200
    for row in api["rows"]:  # exactly as the API masks them
        assert row["name"] in page.text
    assert "张*明" in page.text and "1101********002X" in page.text
    for hidden in ("张三明", "11010519491231002X", "13912345678"):
        assert hidden not in page.text
    assert "139****5678" in page.text
    assert_page(page.text)
    detail = await client.get(f"{HOME}/disclosures/{money['id']}")
    assert "来客招待用餐" in detail.text and "53000.00" in detail.text
    # Only this village's disclosures on this village's site.
    other = await client.get(f"/q/{OTHER_VILLAGE}/disclosures/{money['id']}")
    assert other.status_code == 404


async def test_figures_are_the_townships_public_ones(client: AsyncClient) -> None:
    r = await client.get(f"{HOME}/stats")
    api = (await client.get("/api/v1/stats/public", params={"region_code": "511702005001"})).json()
    assert r.status_code == 200
    assert api["region_name"] in r.text and "凤北街道" in r.text
    assert f"{api['received']} 件" in r.text
    assert "群众满意率" in r.text
    # Up to when the figures count, in local time, as the API says.
    as_of = datetime.fromisoformat(api["as_of"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"统计截至 {as_of:%Y-%m-%d %H:%M}" in r.text
