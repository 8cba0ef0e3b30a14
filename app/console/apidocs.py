"""``/docs`` and ``/redoc`` from vendored assets, so they work offline.

FastAPI's defaults load Swagger UI and ReDoc (and Google Fonts) from CDNs,
which leaves the pages blank on an intranet. The same pages are built here
with every URL pointing at ``/static/vendor/`` (see app/static/vendor/README.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse

from app.console.templating import static_url

router = APIRouter(include_in_schema=False)

# Swagger UI and ReDoc start from an inline script and inline styles of their
# own; everything else must come from this origin (fonts, images, workers).
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


def _secure(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return _secure(
        get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url=static_url("vendor/swagger-ui/swagger-ui-bundle.js"),
            swagger_css_url=static_url("vendor/swagger-ui/swagger-ui.css"),
            swagger_favicon_url=static_url("vendor/swagger-ui/favicon-32x32.png"),
            # No badge fetched from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return _secure(
        get_redoc_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=static_url("vendor/redoc/redoc.standalone.js"),
            redoc_favicon_url=static_url("vendor/swagger-ui/favicon-32x32.png"),
            with_google_fonts=False,
        )
    )
