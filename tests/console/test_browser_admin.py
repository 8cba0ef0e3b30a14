"""Disclosures, administration and reclassification in headless Chromium
against a live server: every new page screenshotted at 1366×768 and at phone
width, no request to another host, no CSP violation."""

from __future__ import annotations

import io

from openpyxl import Workbook
from playwright.async_api import Browser, Page

from tests.console.live import Live, live_server
from tests.console.test_browser import PHONE, browser, open_case, open_page, shot, sign_in

__all__ = ["browser", "live_server"]  # fixtures, imported so this module can use them

HEADER = ["日期", "摘要", "收入", "支出", "余额", "经办人", "凭证号"]


def sheet(bad: bool) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    ws.append(["2026-10-08", "上级拨付村级运转经费", 50000, None, 62000, "李会计", "记-001"])
    ws.append(["2026-13-40" if bad else "2026-10-15", "村道维修材料款", None, 9000, 53000,
               "李会计", "记-002"])  # fmt: skip
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def both_widths(live: Live, page: Page, name: str) -> None:
    await shot(live, page, name)
    await page.set_viewport_size(PHONE)
    await shot(live, page, f"{name}-phone")
    await page.set_viewport_size({"width": 1366, "height": 768})


async def import_sheet(page: Page, bad: bool) -> None:
    box = page.locator("#form-import")
    await box.locator("input[type=file]").set_input_files(
        files=[
            {"name": "十月账目.xlsx", "mimeType": "application/octet-stream", "buffer": sheet(bad)}
        ]
    )
    await box.locator("input[name=closing_balance]").fill("53000.00")
    async with page.expect_navigation():
        await box.locator("button[type=submit]").click()


async def test_clerk_imports_a_bad_row_sees_it_named_and_a_committee_member_publishes(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    clerk = await open_page(browser, live)
    await sign_in(clerk, "shuangyu.clerk")
    await clerk.goto("/console/disclosures")
    await both_widths(live, clerk, "disclosures")
    await clerk.click("a:has-text('起草新的公开')")
    await clerk.select_option("#n-category", "finance")
    await clerk.select_option("#n-kind", "month")
    await clerk.fill("#n-period", "2026-10")
    await clerk.fill("#n-title", "2026年10月村级财务收支公开")
    await clerk.fill("#n-open", "12000.00")
    await both_widths(live, clerk, "disclosure-new")
    async with clerk.expect_navigation():
        await clerk.click("button:has-text('保存草稿')")
    assert "草稿已保存" in await clerk.locator(".flash").inner_text()

    await import_sheet(clerk, bad=True)
    bad_row = clerk.locator("#sheet-row-3")
    assert "日期" in await bad_row.locator("td.row-error").inner_text()
    assert "无问题" in await clerk.locator("#sheet-row-2 td.row-error").inner_text()
    await both_widths(live, clerk, "disclosure-sheet-errors")

    await import_sheet(clerk, bad=False)
    assert "已导入 2 行" in await clerk.locator(".flash").inner_text()
    # A clerk drafts; publishing is for a committee member: no such form here.
    assert await clerk.locator("#form-publish").count() == 0
    await both_widths(live, clerk, "disclosure-draft")
    url = clerk.url

    committee = await open_page(browser, live)
    await sign_in(committee, "shuangyu.committee")
    await committee.goto(url)
    await committee.fill("#p-note", "已核对凭证，同意发布。")
    async with committee.expect_navigation():
        await committee.click("button:has-text('审核通过并发布')")
    assert "已审核发布" in await committee.locator(".flash").inner_text()
    assert "已发布" in await committee.locator(".case-head").inner_text()
    await both_widths(live, committee, "disclosure-published")

    # A handler has no disclosures in scope: the same URL is 404.
    handler = await open_page(browser, live)
    await sign_in(handler, "tongchuan.agri")
    resp = await handler.goto(url)
    assert resp is not None and resp.status == 404


async def test_admin_creates_disables_and_resets_a_user(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    admin = await open_page(browser, live)
    await sign_in(admin, "admin")
    await admin.goto("/console/admin/users")
    await admin.fill("#u-username", "fengbei.wu")
    await admin.fill("#u-name", "吴楠（凤北街道纪工委干部）")
    await admin.fill("#u-password", "Lu7#qiao-Hua!2026")
    await admin.select_option("#u-role", "supervisor")
    await admin.select_option("#u-unit", "XZ-511702005")
    async with admin.expect_navigation():
        await admin.click("button:has-text('创建账号')")
    assert "已创建账号 fengbei.wu" in await admin.locator(".flash").inner_text()
    await both_widths(live, admin, "admin-users")

    newcomer = await open_page(browser, live)
    await newcomer.goto("/console/login")
    await newcomer.fill("#username", "fengbei.wu")
    await newcomer.fill("#password", "Lu7#qiao-Hua!2026")
    async with newcomer.expect_navigation():
        await newcomer.click("button:has-text('登录')")
    assert newcomer.url.endswith("/console/queue")

    row = admin.locator("#user-fengbei\\.wu")
    async with admin.expect_navigation():
        await row.locator("button:has-text('停用')").click()
    assert "已停用" in await admin.locator(".flash").inner_text()
    await newcomer.reload()
    assert "/console/login" in newcomer.url  # its session died with the account

    row = admin.locator("#user-fengbei\\.wu")
    async with admin.expect_navigation():
        await row.locator("button:has-text('启用')").click()
    row = admin.locator("#user-fengbei\\.wu")
    await row.locator("summary:has-text('重置密码')").click()
    await row.locator("input[name=password]").fill("Qing$he-Bridge-77")
    async with admin.expect_navigation():
        await row.locator("button:has-text('重置')").click()
    assert "密码已重置" in await admin.locator(".flash").inner_text()
    with live.api() as http:
        ok = http.post(
            "/api/v1/staff/auth/login",
            json={"username": "fengbei.wu", "password": "Qing$he-Bridge-77"},
        )
        assert ok.status_code == 200, ok.text

    # A form without its CSRF token is 403, and creates nothing.
    await admin.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())"
    )
    await admin.fill("#u-username", "no.token")
    await admin.fill("#u-name", "无令牌")
    await admin.fill("#u-password", "Lu7#qiao-Hua!2026")
    async with admin.expect_navigation() as nav:
        await admin.click("button:has-text('创建账号')")
    assert (await nav.value).status == 403  # type: ignore[union-attr]
    await admin.goto("/console/admin/users")
    assert await admin.locator("#user-no\\.token").count() == 0


async def test_routing_preview_calendar_and_qr_posters(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    admin = await open_page(browser, live)
    await sign_in(admin, "admin")
    await admin.goto("/console/admin/routing")
    await admin.select_option("#pv-item", "0101")
    await admin.select_option("#pv-region", "511702005001")
    await admin.wait_for_selector("#preview ol.trace li", timeout=15_000)
    trace = await admin.locator("#preview").inner_text()
    assert "凤北街道" in trace and "分流依据" in trace
    await both_widths(live, admin, "admin-routing-preview")

    await admin.goto("/console/admin/calendar")
    await admin.fill(
        "#cal-text",
        '{"year": 2031, "holidays": [{"date": "2031-10-01", "note": "国庆节"}],'
        ' "workdays": ["2031-09-28"]}',
    )
    async with admin.expect_navigation():
        await admin.click("button:has-text('导入')")
    assert "已导入 2031 年" in await admin.locator(".flash").inner_text()
    await both_widths(live, admin, "admin-calendar")

    await admin.goto("/console/admin/qrcodes")
    await both_widths(live, admin, "admin-qrcodes")
    async with admin.expect_navigation():
        await admin.click("a:has-text('凤北街道')")
    posters = admin.locator(".qr-poster img")
    assert await posters.count() >= 1
    await admin.wait_for_function(
        "() => [...document.querySelectorAll('.qr-poster img')].slice(0, 2)"
        ".every(i => i.complete && i.naturalWidth > 100)",
        timeout=60_000,
    )
    await both_widths(live, admin, "admin-qr-sheet")
    await admin.emulate_media(media="print")
    await shot(live, admin, "admin-qr-sheet-print")
    # Printed on A4: two posters a page.
    pdf = await admin.pdf(format="A4", print_background=True)
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages == -(-await posters.count() // 2), pages
    await admin.emulate_media(media="screen")
    async with admin.expect_download() as info:
        await admin.locator(".qr-poster a:has-text('下载 PNG')").first.click()
    download = await info.value
    path = await download.path()
    assert download.suggested_filename.startswith("qr-") and path is not None
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


async def test_reclassify_reroutes_the_case_with_its_trace(
    browser: Browser, live_server: Live
) -> None:
    live = live_server
    case = live.resident_files("browser-reclassify")
    page = await open_page(browser, live)
    await sign_in(page, "fengbei.zhang")
    await open_case(page, case["id"])
    box = page.locator("#action-reclassify")
    await box.locator("summary").click()
    await box.locator("select[name=item_code]").select_option("0105")
    await box.locator("textarea").fill("群众所问为报账规定，属政策咨询。")
    await both_widths(live, page, "case-reclassify-form")
    async with page.expect_navigation():
        await box.locator("button[type=submit]").click()
    assert "更正分类" in await page.locator(".flash").inner_text()
    assert "0105" in await page.locator("#h-summary + dl").inner_text()
    timeline = await page.locator("ol.timeline").inner_text()
    assert "更正事项分类" in timeline and "0101 → 0105" in timeline
    assert await page.locator("ol.trace li").count() >= 2
    await both_widths(live, page, "case-reclassified")
    with live.api() as http:
        h = live.staff_token("fengbei.zhang")
        cf = http.get(f"/api/v1/staff/complaints/{case['id']}", headers=h).json()
    assert cf["item"]["code"] == "0105"
    assert cf["events"][-1]["data"]["from_item_code"] == "0101"
    assert cf["events"][-1]["data"]["trace"] == cf["routing_trace"]
    assert live.foreign == [], live.foreign
    assert live.csp_errors == [], live.csp_errors
