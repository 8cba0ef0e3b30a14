"""The console in a real browser: headless Chromium against a live server.

Each role does its real work through the pages; every page is screenshotted
(the folder is printed: YDT_SCREENSHOT_DIR, or a temporary one), every
request to a host other than the server's own is recorded and refused, and
every Content-Security-Policy violation the browser reports fails the run.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

from tests.console.live import DEMO_PASSWORD, Live, live_server, require_chromium

__all__ = ["live_server"]  # the fixture, imported so this module can use it

STALE = "案件已被他人处理，已显示最新状态"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


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


async def open_page(browser: Browser, live: Live, viewport: dict[str, int] = DESKTOP) -> Page:
    """A fresh browser profile (its own cookies) that refuses other hosts."""
    context = await browser.new_context(viewport=viewport, locale="zh-CN", base_url=live.base)

    async def guard(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc != live.host and not url.startswith(("data:", "blob:")):
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


async def shot(live: Live, page: Page, name: str, *, full_page: bool = True) -> None:
    live.counter += 1
    path = str(live.shots / f"{live.counter:02d}-{name}.png")
    await page.screenshot(path=path, full_page=full_page)


async def sign_in(page: Page, username: str) -> None:
    await page.goto("/console/login")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    async with page.expect_navigation():
        await page.click("button:has-text('登录')")
    assert "/console/login" not in page.url, await page.content()


async def open_case(page: Page, cid: str) -> None:
    resp = await page.goto(f"/console/complaints/{cid}")
    assert resp is not None and resp.status == 200, await page.content()


async def submit_action(
    page: Page, action: str, text: str, *, expect: int = 200, **selects: str
) -> None:
    """Open an action's form, fill what it requires, submit, check the status."""
    box = page.locator(f"#action-{action}")
    if not await box.evaluate("d => d.open"):
        await box.locator("summary").click()
    for name, value in selects.items():
        field = box.locator(f"[name={name}]")
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    areas = box.locator("textarea")
    for i in range(await areas.count()):
        await areas.nth(i).fill(text)
    async with page.expect_navigation() as nav:
        await box.locator("button[type=submit]").click()
    response = await nav.value
    # A success redirects (303) to the case page; the browser shows the 200.
    assert response is not None and response.status == expect, await page.content()


async def head_text(page: Page) -> str:
    return await page.locator(".case-head").inner_text()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


async def test_supervisor_accepts_assigns_and_resolves_a_fresh_filing(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    case = live.resident_files("browser-resident-1")
    page = await open_page(browser, live)
    await page.goto("/console/login")
    await shot(live, page, "login")
    await sign_in(page, "fengbei.zhang")
    assert page.url.endswith("/console/queue")
    await shot(live, page, "queue")
    async with page.expect_navigation():
        await page.click(f"a:has-text('{case['tracking_no']}')")
    await shot(live, page, "case-submitted")
    assert "待受理" in await head_text(page)

    await submit_action(page, "accept", "材料齐全，予以受理。")
    assert "已受理" in await page.locator(".flash").inner_text()
    assert "已受理" in await head_text(page)
    await submit_action(page, "assign", "请李敏同志承办。", cadre_id="李敏（凤北街道纪工委干部）")
    assert "已分派" in await head_text(page)
    assert "李敏" in await page.locator("#h-summary + dl").inner_text()

    box = page.locator("#action-resolve")
    await box.locator("summary").click()
    await box.locator("input[type=file]").set_input_files(
        files=[{"name": "公示栏.png", "mimeType": "image/png", "buffer": png()}]
    )
    await submit_action(page, "resolve", "已督促村委会补公开第三季度财务收支，公示栏已更新。")
    assert "已办结" in await head_text(page)
    image = page.locator(".media img")
    assert await image.count() == 1
    assert await image.evaluate("img => img.complete && img.naturalWidth") == 64
    await shot(live, page, "case-resolved-with-evidence")

    # The whole story is on the timeline, public and internal entries told apart.
    timeline = await page.locator("ol.timeline").inner_text()
    for label in ("已提交", "已受理", "已分派承办", "已办结"):
        assert label in timeline
    assert await page.locator("ol.timeline li.internal").count() >= 1

    await page.set_viewport_size(PHONE)
    await shot(live, page, "case-phone")
    await page.goto("/console/queue")
    await shot(live, page, "queue-phone")


async def test_handler_replies_and_asks_for_an_extension_that_a_supervisor_approves(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    case = live.resident_files("browser-resident-2")
    cid = case["id"]
    live.act("fengbei.zhang", cid, "accept")
    live.act(
        "fengbei.zhang",
        cid,
        "transfer",
        department_code="D001",
        department_region_code="511702000000",
        note="请区教育局办理",
    )
    handler = await open_page(browser, live)
    await sign_in(handler, "tongchuan.edu")
    await shot(live, handler, "queue-handler")
    await open_case(handler, cid)
    # A handler never sees who reported, and gets only the handler's actions.
    actions = await handler.locator("details.action summary").all_inner_texts()
    assert not {"受理", "分派承办干部", "上报上级单位"} & set(actions)
    await submit_action(handler, "reply", "已联系学校核实，正在整改。")
    await submit_action(handler, "extend", "需等待审计结果。", days="5")
    await shot(live, handler, "case-handler-after-request")

    supervisor = await open_page(browser, live)
    await sign_in(supervisor, "fengbei.zhang")
    await supervisor.goto("/console/inbox")
    pending = supervisor.locator("section[aria-labelledby=h-ext]")
    assert case["tracking_no"] in await pending.inner_text()
    await shot(live, supervisor, "inbox")
    async with supervisor.expect_navigation():
        await pending.locator(f"a:has-text('{case['tracking_no']}')").click()
    assert "待本单位批准" in await supervisor.locator("#h-deadline + p + p").inner_text()
    days = supervisor.locator("#action-extend input[name=days]")
    assert await days.input_value() == "5"  # the request's days, prefilled
    await submit_action(supervisor, "extend", "同意延期。")
    timeline = await supervisor.locator("ol.timeline").inner_text()
    assert "办理期限延长" in timeline and "阶段性答复" in timeline
    await shot(live, supervisor, "case-extension-approved")
    await supervisor.goto("/console/inbox")
    assert case["tracking_no"] not in await supervisor.locator(
        "section[aria-labelledby=h-ext]"
    ).inner_text()


async def test_two_different_leaders_sign_and_the_case_closes(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    case = live.resident_files("browser-resident-3")
    cid = case["id"]
    live.act("fengbei.zhang", cid, "accept")
    live.act("fengbei.zhang", cid, "resolve", note="已整改到位。")
    live.act("fengbei.zhang", cid, "sign", slot="complainant", note="电话回访，群众满意。")
    live.act("fengbei.zhang", cid, "sign", slot="handler")

    first = await open_page(browser, live)
    await sign_in(first, "fengbei.leader")
    await first.goto("/console/queue?to_sign=1")
    assert case["tracking_no"] in await first.locator("#queue-results").inner_text()
    await shot(live, first, "queue-waiting-for-my-signature")
    await open_case(first, cid)
    await submit_action(first, "sign", "同意销号。", slot="supervising_leader")
    # The same leader may not sign the principal leader's slot too.
    assert await first.locator("#action-sign").count() == 0
    assert "分管领导" in await first.locator(".slots").inner_text()

    second = await open_page(browser, live)
    await sign_in(second, "fengbei.chief")
    await open_case(second, cid)
    await submit_action(second, "sign", "同意。", slot="principal_leader")
    assert "已销号" in await head_text(second)
    slots = await second.locator(".slots").inner_text()
    assert "王强" in slots and "赵红" in slots
    await shot(live, second, "case-closed")
    # The leader's figures then say up to when they count (the projector's as_of).
    resp = await second.goto("/console/dashboard")
    assert resp is not None and resp.status == 200, await second.content()
    assert "数据截至" in await second.locator("#as-of").inner_text()
    await shot(live, second, "dashboard")


async def test_a_stale_form_shows_the_conflict_and_the_fresh_state(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    case = live.resident_files("browser-resident-4")
    cid = case["id"]
    page = await open_page(browser, live)
    await sign_in(page, "fengbei.zhang")
    await open_case(page, cid)
    assert await page.locator("#action-accept input[name=expected_version]").input_value() == "1"
    live.act("fengbei.li", cid, "accept", note="李敏先受理了")  # someone else, first
    await submit_action(page, "accept", "我也来受理。", expect=409)
    assert STALE in await page.locator(".flash").inner_text()
    assert "已受理" in await head_text(page)  # the fresh state
    assert await page.locator("#action-accept").count() == 0
    version = page.locator("#action-assign input[name=expected_version]")
    assert await version.input_value() == "2"
    await shot(live, page, "case-stale-conflict")


async def test_a_handler_typing_another_units_case_url_gets_404(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    case = live.resident_files("browser-resident-5")
    cid = case["id"]
    live.act("fengbei.zhang", cid, "accept")
    live.act(
        "fengbei.zhang",
        cid,
        "transfer",
        department_code="D001",
        department_region_code="511702000000",
    )
    page = await open_page(browser, live)
    await sign_in(page, "tongchuan.agri")  # 农业农村局, not 教育局
    resp = await page.goto(f"/console/complaints/{cid}")
    assert resp is not None and resp.status == 404
    assert "案件不存在" in await page.locator("main").inner_text()
    await shot(live, page, "case-404")
    assert case["tracking_no"] not in await page.content()


async def test_a_form_posted_without_its_csrf_token_is_403(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    case = live.resident_files("browser-resident-6")
    cid = case["id"]
    page = await open_page(browser, live)
    await sign_in(page, "fengbei.zhang")
    await open_case(page, cid)
    await page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())"
    )
    await submit_action(page, "accept", "没有令牌的受理。", expect=403)
    assert "安全校验码" in await page.locator("main").inner_text()
    await shot(live, page, "csrf-403")
    with live.api() as http:
        h = live.staff_token("fengbei.zhang")
        assert http.get(f"/api/v1/staff/complaints/{cid}", headers=h).json()["status"] == (
            "submitted"
        )


async def test_offline_intake_prints_a_receipt(browser: Browser, live_server: Live) -> None:
    live = live_server
    page = await open_page(browser, live)
    await sign_in(page, "fengbei.agent")
    await page.goto("/console/intake")
    await page.select_option("#i-region", "511702005001")
    await page.select_option("#i-item", "0101")
    await page.fill("#i-content", "老人来访反映：村里低保评定不公开，希望核查。")
    await page.fill("#i-name", "王大爷")
    await page.fill("#i-phone", "13700002222")
    await page.check("#i-p-elderly")
    await shot(live, page, "intake")
    async with page.expect_navigation() as nav:
        await page.click("button:has-text('登记并生成回执')")
    assert (await nav.value).status == 201, await page.content()  # type: ignore[union-attr]
    receipt = await page.locator(".receipt").inner_text()
    assert "受理回执" in receipt and "凤北街道" in receipt and "查询码" in receipt
    assert await page.locator(".receipt-qr svg").is_visible()
    await shot(live, page, "receipt")
    # Printed: an A5 sheet by default, a 58 mm slip from the other button.
    await page.emulate_media(media="print")
    await shot(live, page, "receipt-print-a5")
    await page.evaluate("document.documentElement.classList.add('print-slip')")
    width = await page.locator(".receipt").evaluate("e => e.getBoundingClientRect().width")
    assert width < 260, width  # 54 mm is about 204 CSS pixels
    await shot(live, page, "receipt-print-slip")
    await page.evaluate("document.documentElement.classList.remove('print-slip')")
    await page.emulate_media(media="screen")
    # A reload re-posts the form: the first registration is shown, not a second one.
    async with page.expect_navigation():
        await page.reload()
    assert "已经提交过" in await page.locator(".flash").inner_text()


async def test_every_page_and_asset_stays_on_this_origin(
    browser: Browser, live_server: Live
) -> None:
    """Runs last: the API docs render offline, and no page of this module asked
    another host for anything or broke the Content-Security-Policy."""
    live = live_server
    page = await open_page(browser, live)
    await page.goto("/docs")
    await page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "Yidiantong" in await page.locator(".swagger-ui .info .title").inner_text()
    assert await page.locator(".opblock").count() > 20  # the operations rendered
    await shot(live, page, "docs-swagger", full_page=False)  # hundreds of operations
    await page.goto("/redoc")
    await page.wait_for_selector("text=Yidiantong", timeout=20_000)
    await shot(live, page, "docs-redoc", full_page=False)
    await sign_in(page, "fengbei.zhang")
    resp = await page.goto("/console/no-such-page")
    assert resp is not None and resp.status == 404
    await shot(live, page, "page-404")
    await page.goto("/console/queue")
    async with page.expect_navigation():
        await page.click("button:has-text('大字号')")
    assert await page.locator("html.text-large").count() == 1
    await shot(live, page, "queue-large-text")
    # Keyboard: the skip link comes first and the focus ring is visible.
    await page.keyboard.press("Tab")
    focused = page.locator(":focus")
    assert await focused.inner_text() == "跳到主要内容"
    outline = await focused.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"
    assert live.foreign == [], live.foreign
    assert live.csp_errors == [], live.csp_errors
