"""QR codes drawn by the app itself (segno): inline SVG, so a printed receipt
needs no image request, no CDN and no network."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(data: str, *, scale: int = 3) -> Markup:
    """An inline ``<svg>`` of ``data`` (error correction M, quiet zone kept)."""
    code = segno.make(data, error="m", micro=False)
    svg = code.svg_inline(scale=scale, dark="#000", light="#fff", omitsize=False)
    return Markup(svg)  # noqa: S704 - segno's own markup, the data is encoded as modules
