"""Browser-facing safety of the console: cookies, CSRF tokens, response headers.

* The session cookie carries a random token; the database keeps only its
  SHA-256 (``sessions.py``). It is HttpOnly and SameSite=Strict, and Secure
  (with the ``__Host-`` prefix, so no subdomain can set it) whenever the site
  is reached over https.
* A CSRF token is an HMAC of the session under a key derived from the
  service secret: nothing to store, and it cannot be computed without both.
  Before sign-in the login form is bound the same way to a random pre-session
  cookie, so a foreign page cannot sign a browser into an attacker's account.
* Every console response sends a strict Content-Security-Policy (scripts,
  styles and fonts from this origin only: no inline script or style
  attribute), ``X-Frame-Options: DENY`` and ``Cache-Control: no-store`` (case
  files must not linger in a shared computer's cache).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from app.core.config import Settings

SESSION_COOKIE = "ydt_console"
SECURE_SESSION_COOKIE = "__Host-ydt_console"
PRE_COOKIE = "ydt_console_pre"
SECURE_PRE_COOKIE = "__Host-ydt_console_pre"
FLASH_COOKIE = "ydt_flash"
TEXT_COOKIE = "ydt_text"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@lru_cache(maxsize=4)
def _key_for(secret: str) -> bytes:
    # A key of its own, so a console token never doubles as anything signed
    # with the service secret (JWTs) and vice versa.
    return hmac.new(secret.encode(), b"ydt-console-v1", hashlib.sha256).digest()


def console_key(settings: Settings) -> bytes:
    return _key_for(settings.resolved_jwt_secret())


def _mac(settings: Settings, purpose: str, value: str) -> str:
    return hmac.new(console_key(settings), f"{purpose}:{value}".encode(), "sha256").hexdigest()


def csrf_for_session(settings: Settings, session_id: str) -> str:
    return _mac(settings, "csrf", session_id)


def csrf_for_login(settings: Settings, pre_token: str) -> str:
    return _mac(settings, "login", pre_token)


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def is_https(request: Request, settings: Settings) -> bool:
    """Served over https: the request itself (uvicorn honours a trusted proxy's
    X-Forwarded-Proto), or the configured public address."""
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


def session_cookie_name(request: Request, settings: Settings) -> str:
    return SECURE_SESSION_COOKIE if is_https(request, settings) else SESSION_COOKIE


def pre_cookie_name(request: Request, settings: Settings) -> str:
    return SECURE_PRE_COOKIE if is_https(request, settings) else PRE_COOKIE


def set_cookie(
    response: Response,
    request: Request,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    http_only: bool = True,
) -> None:
    """Every console cookie: SameSite=Strict, Path=/, Secure over https; no
    Max-Age unless given, so it ends with the browser (shared office PCs)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request, settings),
        httponly=http_only,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name, path="/", secure=is_https(request, settings), httponly=True, samesite="strict"
    )


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site.

    Browsers send Origin on every POST and Sec-Fetch-Site on every request;
    a request without them (curl, old browsers) is judged by its CSRF token
    alone.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _origin(url: str) -> str | None:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


@lru_cache(maxsize=8)
def _csp(media_origins: tuple[str, ...]) -> str:
    media = " ".join(("'self'", *media_origins))
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media}",
            f"media-src {media}",
            "font-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def content_security_policy(settings: Settings) -> str:
    """Media links (the case viewer) point at the public base URL or at the S3
    server's public address: those origins may serve images, audio and video;
    nothing else may come from anywhere but this origin."""
    origins = [_origin(settings.public_base_url)]
    if settings.storage == "s3":
        scheme = "https" if settings.s3_secure else "http"
        endpoint = settings.s3_public_endpoint or f"{scheme}://{settings.s3_endpoint}"
        origins.append(_origin(endpoint))
    return _csp(tuple(sorted({o for o in origins if o})))


def apply_headers(response: Response, settings: Settings) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(settings)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cache-Control"] = "no-store"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"


def encode_flash(kind: str, text: str) -> str:
    raw = json.dumps({"k": kind, "t": text}, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_flash(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value.encode()))
        kind, text = str(data["k"]), str(data["t"])
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in ("ok", "error", "warn"):
        return None
    return kind, text[:300]
