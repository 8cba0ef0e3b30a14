"""The resident site in headless Chromium at phone width (360×740), with and
without JavaScript, against a live server whose WeChat is the fake one.

Every page is screenshotted (the folder is printed), every request to a host
other than the server's own is refused and recorded (except the WeChat link
the button leads to, answered here), and every CSP violation fails the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

from tests.console.live import VILLAGE, Live, require_chromium, serve
from tests.disclosures.helpers import finance, finance_rows
from tests.fake_wechat import FakeWeChat

PHONE = {"width": 360, "height": 740}
HOME = f"/q/{VILLAGE}"


@dataclass
class Site:
    live: Live
    wechat: FakeWeChat
    disclosure: dict[str, Any]
    case: dict[str, Any]


def publish_hospitality(live: Live) -> dict[str, Any]:
    rows = finance_rows()
    rows[2]["subject"] = "来客招待用餐"
    with live.api() as http:
        clerk, committee = (
            live.staff_token("shuangyu.clerk"),
            live.staff_token("shuangyu.committee"),
        )
        draft = http.post("/api/v1/staff/disclosures", headers=clerk, json=finance(rows=rows))
        assert draft.status_code == 201, draft.text
        d = draft.json()
        done = http.post(
            f"/api/v1/staff/disclosures/{d['id']}/publish",
            headers=committee,
            json={"expected_version": d["lock_version"], "note": "已核对"},
        )
        assert done.status_code == 200, done.text
        return done.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    wechat = FakeWeChat().start()
    try:
        async with serve(
            YDT_WECHAT_API_BASE=wechat.url,
            YDT_WECHAT_APPID="wx-test-app",
            YDT_WECHAT_SECRET="wx-test-secret",
            YDT_WECHAT_TIMEOUT_SECONDS="2",
        ) as live:
            disclosure = publish_hospitality(live)
            case = live.resident_files(
                "site-browser", anonymous=True, contact_name=None, contact_phone=None
            )
            live.act("fengbei.zhang", case["id"], "accept")
            live.act(
                "fengbei.zhang", case["id"], "reply",
                note="内部：当事人是村主任亲戚", public_reply="已约谈村干部，账目下周公开",
            )  # fmt: skip
            yield Site(live, wechat, disclosure, case)
    finally:
        wechat.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    path = require_chromium()
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=path,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield b
        await b.close()


async def phone(browser: Browser, live: Live, *, javascript: bool) -> Page:
    context = await browser.new_context(
        viewport=PHONE,
        locale="zh-CN",
        base_url=live.base,
        java_script_enabled=javascript,
        is_mobile=True,
        has_touch=True,
    )

    async def guard(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).netloc
        if host == "wxaurl.cn":  # where the button leads: WeChat's own page
            await route.fulfill(status=200, content_type="text/html", body="<p>微信</p>")
        elif host != live.host and not url.startswith(("data:", "blob:")):
            live.foreign.append(url)
            await route.abort()
        else:
            await route.continue_()

    await context.route("**/*", guard)
    page = await context.new_page()

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or "Refused to" in msg.text:
            live.csp_errors.append(f"{page.url}: {msg.text}")

    page.on("console", on_console)
    return page


async def shot(live: Live, page: Page, name: str) -> None:
    live.counter += 1
    await page.screenshot(
        path=str(live.shots / f"resident-{live.counter:02d}-{name}.png"), full_page=True
    )


async def fits_the_phone(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
async def test_a_resident_reads_disclosures_figures_and_follows_a_case(
    browser: Browser, site: Site, javascript: bool
) -> None:
    live, tag = site.live, "js" if javascript else "nojs"
    page = await phone(browser, live, javascript=javascript)
    resp = await page.goto(HOME)
    assert resp is not None and resp.status == 200
    assert "双鱼湖社区" in await page.inner_text("h1")
    assert "凤北街道" in await page.inner_text("body")
    await shot(live, page, f"{tag}-village")
    if javascript:
        await fits_the_phone(page)
        size = await page.evaluate("getComputedStyle(document.body).fontSize")
        assert float(size.removesuffix("px")) >= 18  # large text

    async with page.expect_navigation():
        await page.click(f"a[href='{HOME}/disclosures']")
    await page.fill("#q", "招待")
    # page.url changes when the next document commits, before it is parsed:
    # a count read then can see an empty list (a CI run did), so wait for it.
    async with page.expect_navigation():
        await page.click("button:has-text('查找')")
    assert "q=" in page.url
    links = page.locator(".list a")
    assert await links.count() == 1
    assert site.disclosure["title"] in await links.inner_text()
    await shot(live, page, f"{tag}-search")
    async with page.expect_navigation():
        await links.click()
    body = await page.inner_text("body")
    assert "来客招待用餐" in body and "53000.00" in body
    assert "13912345678" not in body and "139****5678" in body
    await shot(live, page, f"{tag}-disclosure")
    if javascript:
        await fits_the_phone(page)

    await page.goto(HOME)
    async with page.expect_navigation():
        await page.click(f"a[href='{HOME}/stats']")
    assert "群众满意率" in await page.inner_text("body")
    await shot(live, page, f"{tag}-figures")

    await page.goto(HOME)
    async with page.expect_navigation():
        await page.click(f"a[href='{HOME}/track']")
    await page.fill("#tracking_no", site.case["tracking_no"])
    await page.fill("#query_code", "WRONG9")
    async with page.expect_navigation():
        await page.click("button:has-text('查询')")
    assert "办理编号或查询码不正确" in await page.inner_text(".error")
    assert "WRONG9" not in page.url and "query_code" not in page.url  # never in a URL
    await shot(live, page, f"{tag}-track-wrong")
    await page.fill("#query_code", site.case["query_code"])
    async with page.expect_navigation():
        await page.click("button:has-text('查询')")
    body = await page.inner_text("body")
    assert site.case["tracking_no"] in body and "已约谈村干部，账目下周公开" in body
    assert "亲戚" not in body
    assert site.case["query_code"] not in page.url
    await shot(live, page, f"{tag}-track")
    if javascript:
        await fits_the_phone(page)
    await page.context.close()
    assert live.foreign == [] and live.csp_errors == []


async def test_the_button_opens_wechat_and_the_link_is_kept(browser: Browser, site: Site) -> None:
    live, wechat = site.live, site.wechat
    wechat.link_mode = "ok"
    page = await phone(browser, live, javascript=False)
    # Playwright routes no redirect target, and this machine has no route to
    # WeChat: the redirect to the link is shown as a page instead of followed.
    seen: list[str] = []

    async def stop_at_redirect(route: Route) -> None:
        resp = await route.fetch(max_redirects=0)
        seen.append(f"{resp.status} {resp.headers.get('location', '')}")
        await route.fulfill(response=resp, status=200, body="<p>微信</p>")

    await page.route("**/open", stop_at_redirect)
    await page.goto(HOME)
    before = wechat.link_counter
    await page.click("a.primary")
    await page.goto(HOME)
    await page.click("a.primary")
    assert len(seen) == 2 and seen[0].startswith("303 https://wxaurl.cn/"), seen
    assert seen[1] == seen[0]  # the same link: kept by this browser
    assert wechat.link_counter == before + 1  # WeChat was asked once
    await page.context.close()


async def test_wechat_down_shows_the_way_by_hand(browser: Browser, site: Site) -> None:
    live, wechat = site.live, site.wechat
    wechat.link_mode = "down"
    try:
        page = await phone(browser, live, javascript=False)
        await page.goto(HOME)
        await page.click("a.primary")
        body = await page.inner_text("body")
        assert "暂时无法直接打开小程序" in body and "搜索" in body and "监督一点通" in body
        await shot(live, page, "wechat-down")
        await page.context.close()
    finally:
        wechat.link_mode = "ok"


async def test_an_unknown_scene_is_a_friendly_page(browser: Browser, site: Site) -> None:
    page = await phone(browser, site.live, javascript=False)
    resp = await page.goto("/q/000000000000")
    assert resp is not None and resp.status == 404
    assert "二维码" in await page.inner_text("body")
    await shot(site.live, page, "unknown-scene")
    await page.context.close()
