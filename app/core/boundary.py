"""The request boundary: what every request passes before any route sees it.

One pure ASGI middleware (``Boundary``, no body buffering) applies, once for
all routes:

* **Control characters** in the path or query string are a 422 (the rule is in
  app.core.schemas; request bodies are checked by ``RequestModel``), or a 400
  in their own format under a prefix registered in ``url_error_renderers``.
* **Body size**: every request body is capped at ``YDT_MAX_BODY_BYTES`` (1 MB)
  unless its route declares a larger cap with ``@body_limit``. The cap is known
  as soon as routing has picked the route, before a byte of the body is read:
  a declared ``Content-Length`` over it is refused at once, and a chunked body is
  counted as it streams, so 150 MB never gets parsed, buffered or spooled.
* **Errors that escape every handler** become ordinary responses here: a
  database or other dependency that cannot be reached is a 503 with
  ``Retry-After`` (logged once, as a warning), anything else a 500 with the
  request id (logged with its traceback). Starlette's own last-resort handler
  answers too but then re-raises, which makes the server drop the client's
  keep-alive connection; nothing reaches it from inside this middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import (
    AppError,
    error_body,
    internal_error_response,
    unavailable_error,
    unavailable_response,
    validation_response,
)
from app.core.schemas import CONTROL_CHAR_MESSAGE, CONTROL_CHARS_SINGLE_LINE

logger = logging.getLogger("app.boundary")

F = TypeVar("F", bound=Callable[..., Any])
_ATTR = "__ydt_body_limit__"
# Multipart framing (boundaries, part headers, the small text fields) beside the file.
FORM_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class BodyLimit:
    cap: Callable[[Settings], int]
    signed_in: bool  # beyond the default cap, only with a valid bearer token


def body_limit(cap: Callable[[Settings], int], *, signed_in: bool = True) -> Callable[[F], F]:
    """Declare a route's request body cap, larger than the default (a function of
    the settings, so per-kind media limits stay configurable). Put it under the
    route decorator::

        @router.post("/media")
        @body_limit(lambda s: s.media_max_video_bytes + FORM_OVERHEAD_BYTES)
        async def upload_media(...): ...

    FastAPI reads a form before it runs the route's dependencies, so with
    ``signed_in`` (the default) a body past the default cap must also carry a
    bearer token that verifies (signature and expiry; the route still checks
    the session): a stranger's 150 MB is refused at once, not spooled to disk.
    """

    def mark(fn: F) -> F:
        setattr(fn, _ATTR, BodyLimit(cap, signed_in))
        return fn

    return mark


def declared_limit(scope: Scope) -> BodyLimit | None:
    """The chosen route's declaration (routing has run when the body is first read)."""
    endpoint = scope.get("endpoint")
    if endpoint is None:
        route = scope.get("route")
        endpoint = getattr(route, "endpoint", None)
    found: BodyLimit | None = getattr(endpoint, _ATTR, None)
    return found


def _signed_in(scope: Scope) -> bool:
    state = scope["app"].state
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return False
            try:
                state.tokens.decode(token.strip(), now=state.clock.now())
            except AppError:
                return False
            return True
    return False


class NotSignedIn(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            status_code=401, detail="请先登录再上传", headers={"WWW-Authenticate": "Bearer"}
        )


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTPExceptions raised while it reads
    the body through unchanged, and the HTTP error handler renders it."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"请求内容过大（上限 {_size(limit)}）")


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{round(n / (1024 * 1024))} MB"
    return f"{max(1, n // 1024)} KB"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# A path prefix whose routes answer refusals in a format of their own (the
# Open311 facade), registered by the app as ``app.state.url_error_renderers``:
# the renderer gets the path and the message and answers a 400.
UrlErrorRenderer = Callable[[str, str], Response]


def _own_renderer(scope: Scope) -> UrlErrorRenderer | None:
    app = scope.get("app")
    renderers: dict[str, UrlErrorRenderer] = getattr(
        getattr(app, "state", None), "url_error_renderers", {}
    )
    path = scope.get("path", "")
    for prefix, render in renderers.items():
        if path.startswith(prefix):
            return render
    return None


def has_control_chars_in_url(scope: Scope) -> str | None:
    """ "path" or "query" when either carries a control character, else None."""
    if CONTROL_CHARS_SINGLE_LINE.search(scope.get("path", "")):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if query:
        text = unquote_to_bytes(query).decode("utf-8", "replace")
        if CONTROL_CHARS_SINGLE_LINE.search(text):
            return "query"
    return None


class Boundary:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.default_limit = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = has_control_chars_in_url(scope)
        if where is not None:
            own = _own_renderer(scope)
            response = (
                own(scope.get("path", ""), CONTROL_CHAR_MESSAGE)
                if own is not None
                else validation_response(
                    [{"loc": (where,), "msg": CONTROL_CHAR_MESSAGE, "type": "control_character"}]
                )
            )
            await response(scope, receive, send)
            return

        default = self.default_limit
        limit: int | None = None
        gated = False  # past the default cap, a token must verify (once)
        received = 0
        started = False

        def past_default(size: int) -> None:
            nonlocal gated
            if gated and size > default:
                gated = False
                if not _signed_in(scope):
                    raise NotSignedIn

        async def receive_limited() -> Message:
            nonlocal limit, gated, received
            if limit is None:
                declared = declared_limit(scope)
                limit = default if declared is None else declared.cap(self.settings)
                gated = declared is not None and declared.signed_in
                length = _content_length(scope)
                if length is not None:
                    if length > limit:
                        raise BodyTooLarge(limit)
                    past_default(length)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                past_default(received)
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_limited, send_tracked)
        except Exception as exc:
            if started:
                raise  # too late for another answer; the server closes the connection
            await self._answer(scope, receive, send, exc)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        response: JSONResponse
        if isinstance(exc, BodyTooLarge):  # raised outside FastAPI's body reading
            response = JSONResponse(
                status_code=413, content=error_body("payload_too_large", str(exc.detail))
            )
        elif (unavailable := unavailable_error(_single(exc))) is not None:
            logger.warning(
                "dependency unavailable",
                extra={"error": type(exc).__name__, "reason": str(exc)[:300]},
            )
            response = unavailable_response(unavailable)
        else:
            request_id = (scope.get("state") or {}).get("request_id")
            logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
            response = internal_error_response(request_id)
        await response(scope, receive, send)


def _single(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, as task groups wrap it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
