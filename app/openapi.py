"""The committed OpenAPI document is generated here; a test compares it with the app.

Every operation lists the errors it can answer, in the one error shape
(``Error``: ``{"error", "detail"}``), so that clients and contract tests
(tests/test_schemathesis.py) know them. They follow from what the operation
takes, by one rule each, rather than being written out on a hundred routes:

* any input (parameters or body): 400 (a business rule), 404 (something it
  names does not exist) and 422 (the payload's shape);
* a request body: 413 (too large, app.core.boundary) and, for multipart forms,
  415 (a file type not accepted);
* a bearer token: 401 and 403; with it, an unsafe method may also be 409
  (a stale version or a duplicate);
* every operation: 503, the database or another dependency being down;
* whatever a route declares itself in ``responses`` (429 for the rate-limited
  ones, 502 for a misbehaving upstream) gets the same schema.

The Open311 facade (``/open311/``) is the exception: its errors are GeoReport's
``[{code, description}]`` or ``<errors>`` XML, 400/403/404/413/429/503, never 422.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from app.core.config import Settings

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable code"},
        "detail": {"type": "string", "description": "a message for people (Chinese)"},
        "errors": {
            "type": "array",
            "description": "422 only: each field that failed (the input is never echoed)",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
        "request_id": {"type": ["string", "null"]},
    },
}
# GeoReport v2 (/open311/v2) answers errors its own way: a bare list, or <errors>.
OPEN311_PREFIX = "/open311/"
OPEN311_ERROR_SCHEMA: dict[str, Any] = {
    "title": "Open311Error",
    "type": "object",
    "required": ["code", "description"],
    "properties": {
        "code": {"type": "integer", "description": "the HTTP status"},
        "description": {"type": "string"},
    },
}
OPEN311_ERROR_CONTENT: dict[str, Any] = {
    "application/json": {
        "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Open311Error"}}
    },
    "text/xml": {"schema": {"type": "string", "description": "<errors><error>…</error></errors>"}},
}
DESCRIPTIONS = {
    400: "a business rule refused the request",
    401: "no or invalid bearer token",
    403: "this role or person may not do this",
    404: "something the request names does not exist (or is not visible to the caller)",
    409: "conflict: a stale expected_version, a duplicate, or a reused Idempotency-Key",
    413: "request body or upload too large",
    415: "file type not accepted",
    422: "the payload, a parameter or the path does not validate",
    429: "rate limited; retry later",
    502: "an upstream service answered with something unusable",
    503: "the database or another dependency is unavailable; see Retry-After",
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
_UNSAFE = {"post", "put", "patch", "delete"}


def _error_codes(path: str, method: str, op: dict[str, Any]) -> set[int]:
    codes = {503}
    body = op.get("requestBody")
    if op.get("parameters") or body or "{" in path:
        codes |= {400, 404, 422}
    if body:
        codes.add(413)
        if "multipart/form-data" in body.get("content", {}):
            codes.add(415)
    if op.get("security"):
        codes |= {401, 403}
        if method in _UNSAFE:
            codes.add(409)
    codes |= {int(c) for c in op.get("responses", {}) if c.isdigit() and int(c) >= 400}
    return codes


def _open311_errors(op: dict[str, Any]) -> None:
    """GeoReport's own error shape, in both formats; no 422 (a bad value is a 400)."""
    responses = op.setdefault("responses", {})
    responses.pop("422", None)
    codes = {400, 404, 503} | {int(c) for c in responses if c.isdigit() and int(c) >= 400}
    for code in sorted(codes):
        entry = responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
        entry["content"] = OPEN311_ERROR_CONTENT


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error responses of every operation (see the module docstring)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components["Open311Error"] = OPEN311_ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            if path.startswith(OPEN311_PREFIX):
                _open311_errors(op)
                continue
            responses = op.setdefault("responses", {})
            for code in sorted(_error_codes(path, method, op)):
                entry = responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
                entry["content"] = ref
    text = json.dumps(schema)
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in text:
            components.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with its error responses."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "openapi_documented", False):
            app.openapi_schema = document_errors(generate())
            app.state.openapi_documented = True
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_openapi() -> dict[str, Any]:
    from app.main import create_app

    # A throwaway embedded configuration: generating the document must not
    # depend on the caller's environment (or write ./var).
    settings = Settings(
        _env_file=None,
        database_url="sqlite+aiosqlite:///:memory:",
        jwt_secret=SecretStr("openapi-generation-only-secret"),
    )
    app = create_app(settings, configure_logs=False)
    return app.openapi()


def render_openapi() -> str:
    return json.dumps(build_openapi(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def write_openapi(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_openapi(), encoding="utf-8")
    return path
