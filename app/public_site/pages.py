"""Rendering for the resident site: one Jinja environment, the console's
security headers, and errors as Chinese pages.

Pages are small on purpose (one stylesheet, no script, no web font, no image
but what a disclosure attaches): they must load on a weak village connection
and read well on an old phone at 360 px.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from app.console import security as console_security
from app.console import templating as console_templating
from app.core.config import Settings
from app.core.errors import AppError

TEMPLATES_DIR = Path(__file__).parent / "templates"

TITLES = {
    400: "无法办理",
    403: "无法提交",
    404: "没有找到",
    422: "填写有误",
    429: "操作太频繁",
    502: "微信暂时不可用",
    503: "服务暂时不可用",
}


@jinja2.pass_context
def _local(context: jinja2.runtime.Context, value: datetime | None, fmt: str = "%Y-%m-%d") -> str:
    if value is None:
        return "—"
    tz: ZoneInfo = context["tz"]
    return value.astimezone(tz).strftime(fmt)


def _percent(value: float | None) -> str:
    return "暂无" if value is None else f"{value * 100:.1f}%"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.filters["percent"] = _percent
    env.globals["static"] = console_templating.static_url
    return env


templates = Jinja2Templates(env=_environment())


def apply_headers(response: Response, settings: Settings, *, cacheable: bool) -> None:
    """The console's headers (strict CSP, no framing, no sniffing); public
    pages may stay in the browser a minute, so going back on a weak
    connection does not refetch them. Anything with a case in it is no-store."""
    console_security.apply_headers(response, settings)
    if cacheable:
        response.headers["Cache-Control"] = "private, max-age=60"


def render(
    request: Request, name: str, *, status_code: int = 200, cacheable: bool = False, **values: Any
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    context: dict[str, Any] = {
        "tz": ZoneInfo(settings.timezone),
        "miniprogram_name": settings.miniprogram_name,
        "place": None,
        **values,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    apply_headers(response, settings, cacheable=cacheable and status_code == 200)
    return response


def error_page(request: Request, status: int, detail: str, **values: Any) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status_code=status,
        title=TITLES.get(status, "出错了"),
        detail=detail,
        status=status,
        **values,
    )


class ResidentRoute(APIRoute):
    """Every resident page answers in HTML: an ``AppError`` (an unknown QR code,
    a withdrawn disclosure, too many tries) is a Chinese page with the API's
    status, never JSON, never a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                response = error_page(request, exc.status_code, exc.detail)
                for key, value in (exc.headers or {}).items():
                    response.headers[key] = value
                return response
            except RequestValidationError:
                return error_page(request, 400, "网址有误，请从村里的二维码重新打开")

        return handle


def resident_router(**kwargs: Any) -> APIRouter:
    """Pages are not part of the API contract: no place in the OpenAPI document."""
    return APIRouter(route_class=ResidentRoute, include_in_schema=False, **kwargs)
