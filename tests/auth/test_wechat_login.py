"""Residents log in through WeChat (a fake WeChat server on loopback)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.fake_wechat import FakeWeChat

pytestmark = pytest.mark.usefixtures("seeded")
LOGIN = "/api/v1/auth/wechat-login"


async def test_login_with_a_scene_sets_the_village(client: AsyncClient, wechat: FakeWeChat) -> None:
    resp = await client.post(LOGIN, json={"code": "ok-zhang", "scene": "511702005001"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["citizen"]["region_code"] == "511702005001"
    assert body["citizen"]["place"]["township"]["name"] == "凤北街道"
    assert body["access_token"] and body["refresh_token"]
    sent = next(q for m, p, q in wechat.requests if p == "/sns/jscode2session")
    assert sent == {
        "appid": "wx-test-app",
        "secret": "wx-test-secret",
        "js_code": "ok-zhang",
        "grant_type": "authorization_code",
    }
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["region_code"] == "511702005001"


async def test_the_same_person_is_found_again(client: AsyncClient) -> None:
    first = (await client.post(LOGIN, json={"code": "ok-li"})).json()
    second = (await client.post(LOGIN, json={"code": "ok-li", "scene": "511781101002"})).json()
    assert first["citizen"]["id"] == second["citizen"]["id"]
    assert second["citizen"]["region_code"] == "511781101002"  # a later scan moves the resident


async def test_unionid_links_the_person(client: AsyncClient) -> None:
    a = (await client.post(LOGIN, json={"code": "union-wang"})).json()
    b = (await client.post(LOGIN, json={"code": "union-wang"})).json()
    assert a["citizen"]["id"] == b["citizen"]["id"]


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("bad-1", 401, "wechat_login_rejected"),
        ("slow-1", 503, "wechat_unavailable"),
        ("busy-1", 503, "wechat_unavailable"),
        ("boom-1", 503, "wechat_unavailable"),
    ],
)
async def test_wechat_failures_map_to_clear_answers(
    client: AsyncClient, code: str, status: int, error: str
) -> None:
    resp = await client.post(LOGIN, json={"code": code})
    assert resp.status_code == status
    assert resp.json()["error"] == error
    assert any("\u4e00" <= ch <= "\u9fff" for ch in resp.json()["detail"])  # a Chinese message


async def test_unknown_scene_is_404_and_nothing_is_created(client: AsyncClient) -> None:
    resp = await client.post(LOGIN, json={"code": "ok-ghost", "scene": "no-such-scene"})
    assert resp.status_code == 404
    again = (await client.post(LOGIN, json={"code": "ok-ghost"})).json()
    assert again["citizen"]["region_code"] is None


@pytest.mark.parametrize(
    "payload", [{}, {"code": ""}, {"code": "x" * 200}, {"code": "ok-a", "scene": "s" * 65}]
)
async def test_bad_payloads_are_422(client: AsyncClient, payload: object) -> None:
    assert (await client.post(LOGIN, json=payload)).status_code == 422


async def test_logins_are_rate_limited_per_ip(client: AsyncClient) -> None:
    statuses = [
        (await client.post(LOGIN, json={"code": f"ok-r{i}"})).status_code for i in range(32)
    ]
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429
    last = await client.post(LOGIN, json={"code": "ok-r99"})
    assert last.status_code == 429 and int(last.headers["retry-after"]) > 0


async def test_refresh_gives_a_new_access_token(client: AsyncClient) -> None:
    body = (await client.post(LOGIN, json={"code": "ok-refresh"})).json()
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["citizen"]["id"] == body["citizen"]["id"]
    wrong = await client.post("/api/v1/auth/refresh", json={"refresh_token": body["access_token"]})
    assert wrong.status_code == 401


async def test_unconfigured_wechat_is_a_clear_503(app: FastAPI, client: AsyncClient) -> None:
    from app.wechat.client import WeChatClient
    from tests.conftest import make_settings

    await app.state.wechat.aclose()
    app.state.wechat = WeChatClient(make_settings(), app.state.shared_store)
    resp = await client.post(LOGIN, json={"code": "ok-x"})
    assert resp.status_code == 503 and resp.json()["error"] == "wechat_not_configured"


async def test_dev_login_only_when_enabled(app: FastAPI, client: AsyncClient) -> None:
    ok = await client.post(
        "/api/v1/auth/dev-login", json={"openid": "tester", "scene": "511702005001"}
    )
    assert ok.status_code == 200
    app.state.settings = app.state.settings.model_copy(update={"dev_login_enabled": False})
    assert (
        await client.post("/api/v1/auth/dev-login", json={"openid": "tester"})
    ).status_code == 404
