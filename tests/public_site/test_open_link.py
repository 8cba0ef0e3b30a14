"""The button that opens the mini-program: a WeChat link, kept per browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.clock import FixedClock
from app.public_site import security
from app.public_site.service import LINK_LIFE, LINK_MARGIN
from tests.conftest import make_settings
from tests.fake_wechat import FakeWeChat
from tests.public_site.helpers import HOME, OTHER_VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")


def link_calls(wechat: FakeWeChat) -> list[str]:
    return [p for p in wechat.paths() if p in ("/wxa/generate_urllink", "/wxa/generatescheme")]


def browser(app: FastAPI) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")


async def test_a_browser_gets_one_link_and_keeps_it_until_shortly_before_expiry(
    app: FastAPI, wechat: FakeWeChat, clock: FixedClock
) -> None:
    async with browser(app) as phone:
        first = await phone.get(f"{HOME}/open")
        assert first.status_code == 303
        link = first.headers["location"]
        assert link.startswith("https://wxaurl.cn/")
        sent = [body for _, path, body in wechat.requests if path == "/wxa/generate_urllink"]
        assert sent[0]["query"] == "scene=511702005001" and sent[0]["expire_type"] == 0
        assert sent[0]["expire_time"] == int((clock.now() + LINK_LIFE).timestamp())
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Path=/q/" in cookie and "samesite=lax" in cookie.lower()
        for _ in range(3):
            again = await phone.get(f"{HOME}/open")
            assert again.headers["location"] == link
        assert len(link_calls(wechat)) == 1  # cached: WeChat was asked once
        # Another village's button is another link.
        other = await phone.get(f"/q/{OTHER_VILLAGE}/open")
        assert other.headers["location"] != link
        # Shortly before it expires, a new one.
        clock.advance(LINK_LIFE - LINK_MARGIN)
        renewed = await phone.get(f"/q/{OTHER_VILLAGE}/open")
        assert renewed.headers["location"] not in (link, other.headers["location"])
        assert len(link_calls(wechat)) == 3
    # WeChat lets only the first user open a link: another phone gets its own.
    async with browser(app) as neighbour:
        theirs = await neighbour.get(f"{HOME}/open")
        assert theirs.headers["location"] != link


async def test_a_forged_or_foreign_cookie_is_ignored(app: FastAPI, wechat: FakeWeChat) -> None:
    settings = app.state.settings
    clock_now = app.state.clock.now()
    evil = security.link_cookie(
        make_settings(jwt_secret="another-secret-0123456789abcdefgh"),
        "511702005001",
        "https://evil.example/",
        clock_now + timedelta(days=10),
    )
    for value in (evil, "garbage", "x" * 5000, evil.split(".")[0] + ".00"):
        async with browser(app) as phone:
            phone.cookies.set(security.LINK_COOKIE, value, domain="testserver", path="/q/")
            r = await phone.get(f"{HOME}/open")
            assert r.headers["location"].startswith("https://wxaurl.cn/")
    assert security.read_link_cookie(settings, evil, "511702005001", usable_until=clock_now) is None


async def test_wechat_down_shows_how_to_find_the_mini_program(
    client: AsyncClient, wechat: FakeWeChat
) -> None:
    wechat.link_mode = "down"
    r = await client.get(f"{HOME}/open")
    assert r.status_code == 200
    assert "暂时无法直接打开小程序" in r.text
    assert "搜索" in r.text and "监督一点通" in r.text
    assert "set-cookie" not in r.headers  # nothing cached from a failure
    wechat.link_mode = "ok"
    r = await client.get(f"{HOME}/open")
    assert r.status_code == 303


async def test_when_url_links_are_refused_a_url_scheme_is_used(
    client: AsyncClient, wechat: FakeWeChat
) -> None:
    wechat.link_mode = 85401
    r = await client.get(f"{HOME}/open")
    assert r.status_code == 200 and "暂时无法直接打开小程序" in r.text  # both refused
    assert link_calls(wechat) == ["/wxa/generate_urllink", "/wxa/generatescheme"]


async def test_new_links_are_rate_limited_per_address(app: FastAPI, wechat: FakeWeChat) -> None:
    from app.public_site.service import LINKS_PER_MINUTE_PER_IP

    statuses = []
    for _ in range(LINKS_PER_MINUTE_PER_IP + 1):
        async with browser(app) as phone:  # a fresh browser each time: no kept link
            statuses.append((await phone.get(f"{HOME}/open")).status_code)
    assert statuses[:-1] == [303] * LINKS_PER_MINUTE_PER_IP
    assert statuses[-1] == 429
    assert len(link_calls(wechat)) == LINKS_PER_MINUTE_PER_IP


async def test_an_expired_access_token_is_refreshed_once(
    app: FastAPI, client: AsyncClient, wechat: FakeWeChat, clock: FixedClock
) -> None:
    await app.state.shared_store.set(
        "wechat:access_token", "stale", ttl_seconds=3600, now=clock.now()
    )
    r = await client.get(f"{HOME}/open")
    assert r.status_code == 303 and r.headers["location"].startswith("https://wxaurl.cn/")
    tokens = [body for _, path, body in wechat.requests if path == "/cgi-bin/stable_token"]
    assert [t["force_refresh"] for t in tokens] == [True]
    assert link_calls(wechat) == ["/wxa/generate_urllink", "/wxa/generate_urllink"]
