"""``render()``: one way to answer with a page.

It fills in what every page needs (the signed-in user, the CSRF token, the
navigation, a one-time flash message, the larger-text preference), renders
the template with autoescaping, and adds the console's security headers.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app.console import navigation
from app.console.security import (
    FLASH_COOKIE,
    TEXT_COOKIE,
    apply_headers,
    clear_cookie,
    decode_flash,
    encode_flash,
    set_cookie,
)
from app.core.config import Settings

if TYPE_CHECKING:
    from app.console.dependencies import ConsoleContext

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


@lru_cache(maxsize=256)
def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>``: browsers may cache assets for long,
    and a new release still reaches them."""
    file = (STATIC_DIR / path).resolve()
    if STATIC_DIR not in file.parents or not file.is_file():
        raise ValueError(f"no static file {path}")
    version = hashlib.sha256(file.read_bytes()).hexdigest()[:10]
    return f"/static/{path}?v={version}"


@jinja2.pass_context
def _local(
    context: jinja2.runtime.Context, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M"
) -> str:
    if value is None:
        return "—"
    tz: ZoneInfo = context["tz"]
    return value.astimezone(tz).strftime(fmt)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.globals["static"] = static_url
    env.globals["role_label"] = lambda role: navigation.ROLE_LABELS.get(role, str(role))
    # A case's WeChat content-security flag (app/moderation/); pass shows nothing.
    env.globals["moderation_labels"] = {
        "checking": "内容待检测",
        "review": "内容需复核",
        "risky": "内容未通过检测",
    }
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    name: str,
    *,
    ctx: ConsoleContext | None,
    status_code: int = 200,
    flash: tuple[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """Render ``name``; ``flash`` (kind, text) shows now, otherwise the one a
    redirect left in its cookie is shown once and cleared."""
    settings: Settings = request.app.state.settings
    pending = decode_flash(request.cookies.get(FLASH_COOKIE))
    context: dict[str, Any] = {
        "ctx": ctx,
        "user": ctx.user if ctx else None,
        "csrf": ctx.csrf if ctx else values.pop("csrf", ""),
        "nav": navigation.entries_for(ctx.user, ctx.unit) if ctx else [],
        "flash": flash or pending,
        "large_text": request.cookies.get(TEXT_COOKIE) == "large",
        "tz": ZoneInfo(settings.timezone),
        "current_path": request.url.path,
        **values,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if pending is not None:
        clear_cookie(response, request, settings, FLASH_COOKIE)
    apply_headers(response, settings)
    return response


def redirect(request: Request, path: str, *, flash: tuple[str, str] | None = None) -> Response:
    """303 to a console path (only local paths: the target comes from our code
    or from ``safe_next``), with an optional one-time message."""
    settings: Settings = request.app.state.settings
    response: Response
    if request.headers.get("hx-request") == "true":
        # htmx follows this header with a full page load.
        response = Response(status_code=204, headers={"HX-Redirect": path})
    else:
        response = RedirectResponse(path, status_code=303)
    if flash is not None:
        set_cookie(response, request, settings, FLASH_COOKIE, encode_flash(*flash))
    apply_headers(response, settings)
    return response


def safe_next(value: str | None, default: str) -> str:
    """A redirect target from a form or query: only a path inside the console."""
    if (
        value
        and value.startswith("/console")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
        and len(value) <= 300
    ):
        return value
    return default
