"""``ConsoleRoute``: every console route answers in HTML, with the headers.

The API renders an ``AppError`` as JSON; a page renders the same error as a
Chinese page with the same status (a case out of scope is 404 here exactly as
there). A missing or expired session becomes a redirect to the sign-in page.
The request's transaction has already been rolled back when these run (the
session dependency exits first), so an error page never commits half a change.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from app.console.dependencies import LoginRequired
from app.console.security import apply_headers
from app.console.templating import redirect, render
from app.core.config import Settings
from app.core.errors import AppError

TITLES = {
    400: "无法办理",
    401: "需要登录",
    403: "无权访问",
    404: "未找到",
    409: "操作冲突",
    413: "文件过大",
    415: "文件格式不支持",
    422: "填写有误",
    429: "操作过于频繁",
    503: "服务暂不可用",
}


def login_redirect(request: Request) -> Response:
    target = "/console/login"
    if request.method == "GET" and request.url.path.startswith("/console/"):
        # Back to this page after sign-in (a path only: no identity in URLs).
        target += "?next=" + quote(request.url.path, safe="/")
    return redirect(request, target)


def error_page(request: Request, status: int, detail: str) -> Response:
    return render(
        request,
        "error.html",
        ctx=None,
        status_code=status,
        title=TITLES.get(status, "出错了"),
        detail=detail,
        status=status,
    )


def validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "请求"
        parts.append(f"{where}：{err.get('msg', '')}")
    return "请求参数有误。" + "；".join(parts)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            settings: Settings = request.app.state.settings
            try:
                response = await handler(request)
            except LoginRequired:
                response = login_redirect(request)
            except AppError as exc:
                response = error_page(request, exc.status_code, exc.detail)
                for key, value in (exc.headers or {}).items():
                    response.headers[key] = value
            except RequestValidationError as exc:
                response = error_page(request, 422, validation_detail(exc))
            apply_headers(response, settings)
            return response

        return handle


def console_router(**kwargs: Any) -> APIRouter:
    """An APIRouter for console pages: HTML errors, security headers, and no
    place in the OpenAPI document (pages are not part of the API contract)."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False, **kwargs)
