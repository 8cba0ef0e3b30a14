"""Signed values for a resident site that keeps no session.

Residents are not signed in here and the site sets no session cookie, so a
CSRF token cannot be tied to one. The tracking form is protected twice:

* the browser's own word: a POST whose ``Origin`` or ``Sec-Fetch-Site`` names
  another site is refused (``app.console.security.same_origin``, the check
  the console uses). Every browser in use sends one of them on a POST, so a
  foreign page cannot make a resident's browser submit the form;
* a token in the form, an HMAC of the form's scope and the time it was
  served, valid for a few hours: a post that did not come from a page of
  ours (or from one left open since yesterday) is answered with a fresh form.
  It is no secret of the resident's (anyone may fetch a form); the origin
  check is what stops cross-site posts, the token keeps blind posts out.

The "open in WeChat" link is kept in the resident's own browser, signed, so
that WeChat's rule (the first WeChat user who opens a URL Link owns it) holds:
one browser gets one link and reuses it until shortly before it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from functools import lru_cache

from app.core.config import Settings

FORM_TOKEN_AGE = timedelta(hours=4)
LINK_COOKIE = "ydt_wxlink"


@lru_cache(maxsize=4)
def _key_for(secret: str) -> bytes:
    # Its own key: nothing signed here doubles as a JWT or a console token.
    return hmac.new(secret.encode(), b"ydt-resident-v1", hashlib.sha256).digest()


def _mac(settings: Settings, purpose: str, value: str) -> str:
    key = _key_for(settings.resolved_jwt_secret())
    return hmac.new(key, f"{purpose}:{value}".encode(), "sha256").hexdigest()[:40]


def form_token(settings: Settings, scope: str, *, now: datetime) -> str:
    issued = str(int(now.timestamp()))
    return f"{issued}.{_mac(settings, 'track-form', f'{scope}:{issued}')}"


def form_token_ok(settings: Settings, token: str, scope: str, *, now: datetime) -> bool:
    issued, _, mac = token.partition(".")
    if not issued.isdigit() or len(issued) > 12:
        return False
    expected = _mac(settings, "track-form", f"{scope}:{issued}")
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return False
    age = now.timestamp() - int(issued)
    return -300 <= age <= FORM_TOKEN_AGE.total_seconds()


def link_cookie(settings: Settings, scene: str, link: str, expires_at: datetime) -> str:
    payload = json.dumps({"s": scene, "u": link, "e": int(expires_at.timestamp())})
    data = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{data}.{_mac(settings, 'wxlink', data)}"


def read_link_cookie(
    settings: Settings, value: str | None, scene: str, *, usable_until: datetime
) -> str | None:
    """The link this browser was given for ``scene``, if it is ours, for this
    village, and still valid at ``usable_until``."""
    if not value or len(value) > 1024:
        return None
    data, _, mac = value.partition(".")
    if not hmac.compare_digest(mac.encode(), _mac(settings, "wxlink", data).encode()):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        link, owner, expires = str(payload["u"]), str(payload["s"]), int(payload["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if owner != scene or expires <= usable_until.timestamp():
        return None
    if not link.startswith(("https://", "weixin://")):
        return None
    return link
