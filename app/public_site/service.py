"""What the resident site shows, taken from the same services as the API.

Nothing here is a rule of its own: the village comes from the QR scene as the
mini-program's login reads it, disclosures from the disclosures service (masked
as the API masks them), figures from the public statistics, tracking from the
complaints service with the API's rate limit. Only the "open in WeChat" link
is new: WeChat makes it, and the resident's browser keeps it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.ratelimit import enforce, ip_bucket
from app.core.shared import SharedStore
from app.public_site import security
from app.regions import service as regions_service
from app.regions.schemas import SceneRead
from app.wechat.client import (
    WeChatBadResponse,
    WeChatClient,
    WeChatRefused,
    WeChatUnavailable,
)

logger = logging.getLogger(__name__)

# WeChat keeps a link at most 30 days; ask for a little less and stop handing
# it out a day before it ends, so no resident taps a link that just expired.
LINK_LIFE = timedelta(days=29)
LINK_MARGIN = timedelta(days=1)
# Each new link spends WeChat's daily quota (500 000 per mini-program).
LINKS_PER_MINUTE_PER_IP = 10
SEARCH_MAX = 50
PAGE_SIZE = 20


async def place(session: AsyncSession, scene: str) -> SceneRead:
    """The village a poster's scene names (unknown: ``SceneNotFound``, a 404)."""
    return await regions_service.resolve_scene(session, scene)


@dataclass(frozen=True, slots=True)
class OpenLink:
    url: str | None  # None: WeChat could not make one; show how to find the mini-program
    cookie: str | None  # a new link to keep in the browser
    expires_at: datetime | None


async def open_link(
    wechat: WeChatClient,
    settings: Settings,
    shared: SharedStore,
    *,
    scene: str,
    kept: str | None,
    ip: str,
    now: datetime,
) -> OpenLink:
    """The link that opens the mini-program at this village: the one this
    browser already holds while it is valid, else a new URL Link (a URL Scheme
    when WeChat refuses URL Links), else none."""
    held = security.read_link_cookie(settings, kept, scene, usable_until=now + LINK_MARGIN)
    if held is not None:
        return OpenLink(url=held, cookie=None, expires_at=None)
    if not wechat.configured:
        return OpenLink(url=None, cookie=None, expires_at=None)
    await enforce(
        shared,
        f"wxlink:ip:{ip_bucket(ip)}",
        limit=LINKS_PER_MINUTE_PER_IP,
        window_seconds=60,
        now=now,
        what="打开小程序",
    )
    expire_at = now + LINK_LIFE
    page, query, env = settings.wechat_qr_page, f"scene={scene}", settings.wechat_link_env
    try:
        try:
            url = await wechat.url_link(
                page=page, query=query, env_version=env, expire_at=expire_at, now=now
            )
        except WeChatRefused:
            url = await wechat.url_scheme(
                page=page, query=query, env_version=env, expire_at=expire_at, now=now
            )
    except (WeChatUnavailable, WeChatBadResponse) as exc:
        logger.warning("no mini-program link", extra={"error": exc.code})
        return OpenLink(url=None, cookie=None, expires_at=None)
    return OpenLink(
        url=url,
        cookie=security.link_cookie(settings, scene, url, expire_at),
        expires_at=expire_at,
    )


def clean_search(raw: str | None) -> tuple[str | None, str | None]:
    """(words to search, a message when they cannot be used)."""
    if raw is None:
        return None, None
    q = " ".join(raw.split())
    if not q:
        return None, None
    if len(q) > SEARCH_MAX:
        return None, f"搜索词不能超过 {SEARCH_MAX} 个字"
    return q, None
