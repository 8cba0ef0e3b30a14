"""One error shape for the whole API: ``{"error": code, "detail": message}``.

Services raise these; only routers may know about HTTP. A payload that fails
validation is a 422 in the same shape (plus ``errors``, never echoing the
input). A database or other dependency that cannot be reached is a 503 with
``Retry-After``; anything else that escapes is a bug and renders as a 500 with
a request id. Both are ordinary responses (``ErrorBoundary`` in
app.core.boundary), so the client's keep-alive connection survives them.
"""

from __future__ import annotations

import logging
import re
import socket
import sqlite3
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.schemas import CONTROL_CHAR_MESSAGE

logger = logging.getLogger("app.errors")


class AppError(Exception):
    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.extra = extra or {}  # more fields beside error and detail (e.g. per-row errors)


class BadRequest(AppError):
    status_code, code = 400, "bad_request"


class Unauthorized(AppError):
    status_code, code = 401, "unauthorized"


class Forbidden(AppError):
    status_code, code = 403, "forbidden"


class NotFound(AppError):
    status_code, code = 404, "not_found"


class Conflict(AppError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code, code = 415, "unsupported_media_type"


class UnprocessableEntity(AppError):
    """A payload that parsed but breaks a business rule (not a 422 shape error)."""

    status_code, code = 400, "invalid_request"


class TooManyRequests(AppError):
    status_code, code = 429, "too_many_requests"


class BadGateway(AppError):
    """An upstream (WeChat, object storage) answered, but not with what it promises."""

    status_code, code = 502, "bad_gateway"


class ServiceUnavailable(AppError):
    status_code, code = 503, "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


RETRY_AFTER_SECONDS = 5


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


async def _app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if isinstance(exc, ServiceUnavailable):
        return unavailable_response(exc)
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(exc.code, exc.detail, **exc.extra),
        headers=exc.headers,
    )


# PostgreSQL SQLSTATE classes meaning "the server cannot serve you now": connection
# exceptions, insufficient resources (too many connections), operator intervention
# (shutdown, cannot connect now), a missing database, refused authentication.
_PG_UNAVAILABLE = ("08", "53", "57P", "3D", "28")
_SQLITE_UNAVAILABLE = (
    "unable to open database",
    "database is locked",
    "disk i/o error",
    "database or disk is full",
    "readonly database",
)


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def unavailable_error(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 an exception stands for when it means a dependency is down, else None.

    The database answers this way when it refuses connections (asyncpg raises
    the socket's ConnectionRefusedError unwrapped), when the pool times out,
    when a connection drops mid-request and when PostgreSQL says it cannot
    serve; a connection error from anything else is a dependency down too.
    """
    if isinstance(exc, ServiceUnavailable):
        return exc
    message = "数据库暂时无法访问，请稍后重试"
    if isinstance(exc, sa_exc.TimeoutError):  # the pool: every connection busy
        return DatabaseUnavailable(message)
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return DatabaseUnavailable(message)
        state = _sqlstate(exc)
        if state is not None and state.startswith(_PG_UNAVAILABLE):
            return DatabaseUnavailable(message)
        if isinstance(exc.orig, sqlite3.OperationalError) and any(
            m in str(exc.orig).lower() for m in _SQLITE_UNAVAILABLE
        ):
            return DatabaseUnavailable(message)
        if isinstance(exc.orig, OSError):
            return DatabaseUnavailable(message)
        return None
    if isinstance(exc, sqlite3.OperationalError) and any(  # sqlite3 used directly
        m in str(exc).lower() for m in _SQLITE_UNAVAILABLE
    ):
        return DatabaseUnavailable(message)
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        if _raised_in(exc, _DB_DRIVERS):
            return DatabaseUnavailable(message)
        return ServiceUnavailable("服务暂时不可用，请稍后重试")
    return None


_DB_DRIVERS = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(packages):
            return True
        tb = tb.tb_next
    return False


def unavailable_response(error: ServiceUnavailable) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(error.headers or {})}
    return JSONResponse(
        status_code=error.status_code,
        content=error_body(error.code, error.detail, **error.extra),
        headers=headers,
    )


def internal_error_response(request_id: str | None) -> JSONResponse:
    return JSONResponse(
        status_code=500,
        content=error_body("internal_error", "服务器内部错误，请稍后重试", request_id=request_id),
    )


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Last resort, for errors outside ErrorBoundary (in an outer middleware)."""
    request_id = getattr(request.state, "request_id", None)
    unavailable = unavailable_error(exc)
    if unavailable is not None:
        logger.warning("dependency unavailable", extra={"error": repr(exc)[:300]})
        return unavailable_response(unavailable)
    logger.exception("unhandled error", extra={"request_id": request_id})
    return internal_error_response(request_id)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
_HTTP_DETAILS = {
    413: "请求内容过大",
    415: "不支持的内容类型",
}


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Framework-raised errors (unknown route, wrong method, body limit) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = str(exc.detail)
    if detail.isascii():  # the framework's English phrase, not one of ours
        detail = _HTTP_DETAILS.get(exc.status_code, detail)
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(code, detail),
        headers=getattr(exc, "headers", None),
    )


# --- 422: always renderable, never echoing the input ----------------------------------

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_REASONS = {
    "missing": "缺少必填项",
    "extra_forbidden": "不接受此字段",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "too_short": "项数过少",
    "too_long": "项数过多",
    "string_pattern_mismatch": "格式不正确",
    "string_type": "应为文本",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "finite_number": "不能是 NaN 或无穷大",
    "decimal_parsing": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "datetime_parsing": "时间格式应为 ISO 8601，例如 2026-11-20T09:30:00+08:00",
    "datetime_from_date_parsing": "时间格式应为 ISO 8601，例如 2026-11-20T09:30:00+08:00",
    "timezone_aware": "时间须带时区，例如 +08:00",
    "json_invalid": "JSON 格式有误",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "list_type": "应为列表",
    "control_character": CONTROL_CHAR_MESSAGE,
}


def _clean(value: str, limit: int = 200) -> str:
    """A string safe to render as UTF-8 JSON and to show: no controls, no surrogates."""
    return _UNPRINTABLE.sub("\ufffd", value[:limit])


def _loc(loc: Sequence[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else _clean(str(part), 64) for part in loc]


def _reason(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", ""))
    if error.get("type") == "value_error" and msg.startswith("Value error, "):
        return _clean(msg.removeprefix("Value error, "))  # our own, already Chinese
    return _REASONS.get(str(error.get("type")), "取值无效")


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Location, message and type of each error; the offending input is left out
    (it may be NaN, a lone surrogate or a megabyte of text)."""
    out: list[dict[str, Any]] = []
    for error in list(errors)[:20]:
        if not isinstance(error, dict):
            continue
        # ``msg`` is read by residents' clients as is: Pydantic's English
        # ("Field required", "Value error, ...") never reaches them; the
        # machine-readable ``type`` says which rule failed.
        reason = _reason(error)
        out.append(
            {
                "loc": _loc(error.get("loc") or ()),
                "msg": reason,
                "type": _clean(str(error.get("type", "")), 64),
                "reason": reason,
            }
        )
    return out


def validation_response(errors: Sequence[Any]) -> JSONResponse:
    listed = validation_errors(errors)
    if listed:
        first = listed[0]
        where = ".".join(str(p) for p in first["loc"][1:] if p != "body") or ""
        detail = f"{where}：{first['reason']}" if where else first["reason"]
    else:
        detail = "请求参数有误"
    return JSONResponse(
        status_code=422,
        content=error_body("validation_error", "请求参数有误：" + detail, errors=listed),
    )


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc.errors())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)
