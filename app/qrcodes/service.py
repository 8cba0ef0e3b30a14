"""The QR poster for a village: the code residents scan, the name printed under it.

With WeChat configured the code is the mini-program code (wxacode) carrying
the scene; otherwise a standard QR code (segno) whose URL carries the scene,
which the mini-program's "scan ordinary QR code" rule opens.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import subprocess
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont
from pypinyin import lazy_pinyin
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import urls
from app.core.config import Settings
from app.core.errors import BadGateway, BadRequest
from app.models.enums import RegionLevel
from app.regions import service as regions_service
from app.wechat.client import WeChatClient

logger = logging.getLogger(__name__)

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
POSTER_WIDTH = 600
# getwxacodeunlimit draws 280–1280 px; anything far bigger is not a QR code.
MAX_CODE_SIDE = 2048


def decode_wxacode(raw: bytes) -> Image.Image:
    """The mini-program code WeChat sent, decoded; anything else is WeChat's fault (502).

    The size is read from the header before any pixel is decoded."""
    try:
        opened = Image.open(io.BytesIO(raw))
        if max(opened.size) > MAX_CODE_SIDE:
            raise BadGateway(f"微信返回的小程序码尺寸异常（{opened.size[0]}×{opened.size[1]}）")
        image = opened.convert("RGB")
    except BadGateway:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        logger.warning("wxacode is not an image", extra={"bytes": len(raw), "error": repr(exc)})
        raise BadGateway("微信返回的小程序码不是有效的图片，请稍后重试") from exc
    return image


@lru_cache(maxsize=4)
def find_cjk_font(configured: Path | None) -> Path | None:
    """The configured font, a known TrueType CJK font, or what fontconfig
    offers for Chinese (posters and the dossier PDF share it)."""
    for candidate in ([configured] if configured else []) + [Path(p) for p in FONT_CANDIDATES]:
        if candidate is not None and candidate.is_file():
            return candidate
    return _fontconfig_cjk()


def _fontconfig_cjk() -> Path | None:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
            [fc_match, "-f", "%{file}", ":lang=zh-cn:fontformat=TrueType"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(found) if found else None
    return (
        path
        if path is not None and path.suffix.lower() in (".ttf", ".ttc") and path.is_file()
        else None
    )


def qr_image(data: str) -> Image.Image:
    buf = io.BytesIO()
    segno.make(data, error="m", micro=False).save(buf, kind="png", scale=12, border=2)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def compose_poster(code: Image.Image, title: str, subtitle: str, font_path: Path | None) -> bytes:
    """The code scaled to the poster width with two lines of text beneath."""
    code = code.convert("RGB").resize(
        (POSTER_WIDTH - 60, POSTER_WIDTH - 60), Image.Resampling.NEAREST
    )
    if font_path is None:
        logger.warning("no CJK font found for QR posters; printing the name in pinyin")
        title = " ".join(w.capitalize() for w in lazy_pinyin(title))
        big = small = ImageFont.load_default(size=28)
    else:
        big = ImageFont.truetype(str(font_path), 40)
        small = ImageFont.truetype(str(font_path), 24)
    poster = Image.new("RGB", (POSTER_WIDTH, POSTER_WIDTH + 120), "white")
    poster.paste(code, (30, 20))
    draw = ImageDraw.Draw(poster)
    for text, font, y in ((title, big, POSTER_WIDTH - 20), (subtitle, small, POSTER_WIDTH + 40)):
        width = draw.textlength(text, font=font)
        draw.text(((POSTER_WIDTH - width) / 2, y), text, fill="black", font=font)
    out = io.BytesIO()
    poster.save(out, format="PNG", optimize=True)
    return out.getvalue()


async def poster(
    session: AsyncSession,
    region_code: str,
    *,
    settings: Settings,
    wechat: WeChatClient,
    now: datetime,
) -> bytes:
    path = await regions_service.get_chain(session, region_code)
    village = path[-1]
    if village.level is not RegionLevel.village or not village.scene:
        raise BadRequest(f"{village.name} 不是村（社区），没有二维码")
    code: Image.Image
    if wechat.configured:
        raw = await wechat.wxacode(scene=village.scene, page=settings.wechat_qr_page, now=now)
        code = await asyncio.to_thread(decode_wxacode, raw)
    else:
        code = qr_image(urls.village_page(settings, village.scene))
    township = path[-2].name if len(path) >= 2 else ""
    subtitle = (
        f"{township} · 扫码反映问题、查看村务公开" if township else "扫码反映问题、查看村务公开"
    )
    font = find_cjk_font(settings.qr_font)
    if font is None:
        subtitle = f"{village.code}"
    return await asyncio.to_thread(compose_poster, code, village.name, subtitle, font)
