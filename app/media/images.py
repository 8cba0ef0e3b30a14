"""Re-encoding images so no EXIF (GPS, device, time) ever reaches storage.

The pixels are decoded and written again; the orientation EXIF carried is
applied to the pixels first so the photo still shows upright. HEIC (iPhone)
is converted to JPEG. The original bytes are never stored.

Decoding is where a small file costs a lot: a 455 KB PNG can hold 100
megapixels (+700 MB of RAM, seconds of CPU). ``Image.open`` reads only the
header, so the size is checked against the configured limit *before*
``load()``; and Pillow's own guard is set so that nothing above
``PIXEL_CEILING`` decodes anywhere in the process (dossier thumbnails, QR
posters), whatever the code path.
"""

from __future__ import annotations

import io
import warnings
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from app.core.errors import BadRequest, PayloadTooLarge

register_heif_opener()

# The most the setting may allow (Settings.media_max_image_pixels le=).
# Pillow raises DecompressionBombError above twice MAX_IMAGE_PIXELS and only
# warns between once and twice: half the ceiling makes the ceiling the error.
PIXEL_CEILING = 80_000_000
Image.MAX_IMAGE_PIXELS = PIXEL_CEILING // 2
# Below the ceiling the explicit per-kind check decides; Pillow's warning for
# the (ceiling/2, ceiling] band is noise, not a decision.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

_OUTPUT = {
    "JPEG": ("JPEG", "image/jpeg", "jpg"),
    "PNG": ("PNG", "image/png", "png"),
    "WEBP": ("WEBP", "image/webp", "webp"),
}


def megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:g}"


def too_many_pixels(max_pixels: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"图片像素过大（上限 {megapixels(max_pixels)} 百万像素），请压缩或截图后再上传"
    )


def clean_image(source: IO[bytes], *, max_pixels: int) -> tuple[bytes, str, str, tuple[int, int]]:
    """Return (bytes, content type, extension, (width, height)) without metadata.

    Refuses (413) an image of more than ``max_pixels`` from its header alone.
    """
    try:
        with Image.open(source) as img:
            width, height = img.size  # header only: nothing is decoded yet
            if width <= 0 or height <= 0:
                raise BadRequest("图片已损坏或格式无法识别，请重新拍摄后上传")
            if width * height > max_pixels:
                raise too_many_pixels(max_pixels)
            img.load()
            fmt = img.format or ""
            upright = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError as exc:
        raise too_many_pixels(min(max_pixels, PIXEL_CEILING)) from exc
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
