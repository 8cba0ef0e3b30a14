from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from fastapi import FastAPI
from httpx import AsyncClient
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from app.qrcodes.service import compose_poster, find_cjk_font, qr_image
from app.wechat.client import WeChatClient
from tests.conftest import make_settings
from tests.factories import login, make_staff
from tests.fake_wechat import FakeWeChat

pytestmark = pytest.mark.usefixtures("seeded")
URL = "/api/v1/staff/qrcodes/511702005001.png"


@pytest.fixture
async def staff(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "qr.admin", StaffRole.admin)
    return await login(client, "qr.admin")


async def test_with_wechat_the_poster_carries_the_mini_program_code(
    client: AsyncClient, staff: dict[str, str], wechat: FakeWeChat
) -> None:
    first = await client.get(URL, headers=staff)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(first.content)).size == (600, 720)
    calls = [q for m, p, q in wechat.requests if p == "/wxa/getwxacodeunlimit"]
    assert calls[0]["scene"] == "511702005001" and calls[0]["page"] == "pages/index/index"
    fetched = wechat.paths().count("/cgi-bin/stable_token")
    assert fetched <= 1  # none if an earlier test left a valid token in the shared cache
    await client.get(URL, headers=staff)
    # the second poster reuses the cached access token
    assert wechat.paths().count("/cgi-bin/stable_token") == fetched


async def test_without_wechat_a_standard_qr_code_carries_the_scene(
    app: FastAPI, client: AsyncClient, staff: dict[str, str]
) -> None:
    await app.state.wechat.aclose()
    app.state.wechat = WeChatClient(make_settings(), app.state.shared_store)
    resp = await client.get(URL, headers=staff)
    assert resp.status_code == 200
    decoded = [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(resp.content)))]
    assert decoded == ["http://127.0.0.1:8000/q/511702005001"]


@pytest.mark.parametrize(
    ("code", "status"), [("511702005000", 400), ("511799999999", 404), ("5117", 422)]
)
async def test_only_villages_have_posters(
    client: AsyncClient, staff: dict[str, str], code: str, status: int
) -> None:
    assert (
        await client.get(f"/api/v1/staff/qrcodes/{code}.png", headers=staff)
    ).status_code == status


async def test_posters_are_for_staff(client: AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401


def test_name_is_printed_with_a_cjk_font_or_in_pinyin_without_one() -> None:
    code = qr_image("http://example/q/1")
    font = find_cjk_font(None)
    for font_path in ([font] if font else []) + [None]:
        png = compose_poster(code, "双鱼湖社区", "凤北街道", font_path)
        img = Image.open(io.BytesIO(png)).convert("L")
        text_band = img.crop((0, 580, 600, 720))
        assert text_band.getextrema()[0] < 100  # something dark was drawn under the code
        assert [b.text for b in zxingcpp.read_barcodes(img)] == ["http://example/q/1"]


def test_a_configured_font_path_wins_and_a_missing_one_falls_back(tmp_path: Path) -> None:
    configured = tmp_path / "custom.ttf"
    configured.write_bytes(b"not checked here, only found")
    find_cjk_font.cache_clear()
    assert find_cjk_font(configured) == configured
    assert find_cjk_font(tmp_path / "missing.ttf") == find_cjk_font(None)


def _huge_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        ((b"<html>system busy</html>", "image/png"), "不是有效的图片"),
        ((b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"), "不是有效的图片"),
        ((_huge_png(), "image/png"), "尺寸异常"),
        ((b"<html>gateway</html>", "text/html"), "无法识别"),
    ],
)
async def test_a_wechat_code_that_is_no_image_is_a_502(
    client: AsyncClient,
    staff: dict[str, str],
    wechat: FakeWeChat,
    reply: tuple[bytes, str],
    detail: str,
) -> None:
    wechat.wxacode_reply = reply
    try:
        resp = await client.get(URL, headers=staff)
    finally:
        wechat.wxacode_reply = None
    assert resp.status_code == 502
    assert resp.json()["error"] in ("bad_gateway", "wechat_bad_response")
    assert detail in resp.json()["detail"]
