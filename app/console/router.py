"""Every console router, mounted once by ``app/main.py``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.console import (
    admin,
    admin_routing,
    auth,
    callbacks,
    case,
    dashboard,
    disclosures,
    historical,
    inbox,
    intake,
    queue,
)
from app.console.routing import console_router, error_page

console = APIRouter()
for area in (
    auth,
    queue,
    case,
    intake,
    historical,
    inbox,
    dashboard,
    callbacks,
    disclosures,
    admin,
    admin_routing,
):
    console.include_router(area.router)

_fallback = console_router(prefix="/console")


@_fallback.api_route("/{rest:path}", methods=["GET", "POST"])
async def not_found(request: Request, rest: str) -> Response:
    """Unknown console paths answer with the console's own 404 page."""
    return error_page(request, 404, "页面不存在")


console.include_router(_fallback)
