"""The public addresses printed on paper (QR posters, receipts): built in one
place, so the pages that answer them and the codes that point at them agree.

Residents outside the mini-program land on server-rendered pages: a village's
page at ``/q/{scene}`` (what the village poster encodes) and the tracking page
at ``/track`` (what a receipt encodes, with the tracking number filled in;
the query code is never put in a URL, where logs and browser history keep it).
"""

from __future__ import annotations

from urllib.parse import quote

from app.core.config import Settings


def public_url(settings: Settings, path: str) -> str:
    return settings.public_base_url.rstrip("/") + "/" + path.lstrip("/")


def village_page(settings: Settings, scene: str) -> str:
    return public_url(settings, f"/q/{quote(scene, safe='')}")


def tracking_page(settings: Settings, tracking_no: str | None = None) -> str:
    url = public_url(settings, "/track")
    return f"{url}?no={quote(tracking_no, safe='')}" if tracking_no else url
