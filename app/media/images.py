"""Re-encoding images so no EXIF (GPS, device, time) ever reaches storage.

The pixels are decoded and written again; the orientation EXIF carried is
applied to the pixels first so the photo still shows upright. HEIC (iPhone)
is converted to JPEG. The original bytes are never stored.
"""

from __future__ import annotations

import io
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from app.core.errors import BadRequest, PayloadTooLarge

register_heif_opener()
MAX_PIXELS = 60_000_000  # 60 MP: larger is a decompression bomb, not a phone photo
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_OUTPUT = {
    "JPEG": ("JPEG", "image/jpeg", "jpg"),
    "PNG": ("PNG", "image/png", "png"),
    "WEBP": ("WEBP", "image/webp", "webp"),
}


def clean_image(source: IO[bytes]) -> tuple[bytes, str, str, tuple[int, int]]:
    """Return (bytes, content type, extension, (width, height)) without metadata."""
    try:
        with Image.open(source) as img:
            img.load()
            fmt = img.format or ""
            upright = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge("图片像素过大，请压缩后再上传") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadRequest("图片已损坏或格式无法识别，请重新拍摄后上传") from exc
    out_format, ctype, ext = _OUTPUT.get(fmt, _OUTPUT["JPEG"])
    if out_format == "JPEG" and upright.mode not in ("RGB", "L"):
        upright = upright.convert("RGB")
    buf = io.BytesIO()
    params: dict[str, object] = {"optimize": True}
    if out_format in ("JPEG", "WEBP"):
        params["quality"] = 88
    # No exif=, no icc/xmp/pnginfo arguments: Pillow writes none of them.
    upright.save(buf, format=out_format, **params)
    return buf.getvalue(), ctype, ext, upright.size
