"""The residents' hottest reads served beside the framework's routing.

Starlette's router, FastAPI's included-router match, its request handler and
its exception middleware were about a fifth of the CPU of a resident's read
(``GET /complaints/{id}``, ``/track/{no}``; bench/README.md), for a route
that solves no dependency and returns JSON it built itself. A hot route here
takes only the requests its FastAPI twin would accept exactly as they are
(the method, the path parameter's bounds, the query) and calls the same
endpoint function. Everything else (a HEAD, an id too long, a query code
missing or repeated) goes the usual way, so the framework's answers to bad
input (404, 405, 422) and the OpenAPI document are unchanged.

It sits inside every middleware of ours (request id, access line, the error
boundary), so the answer carries the same headers and is logged the same
way. Errors are rendered by the app's own exception handlers, as Starlette's
``ExceptionMiddleware`` would; anything without a handler rises to the
boundary (503 for a dependency that is down, 500 otherwise), as it would.

A route with a body (the resident's filing) reads it whole first and hands it
to the route's parser, which takes only what the FastAPI twin would take as it
is (a JSON body that validates). For anything else the framework gets the
request with every message read so far replayed, in order, and an error the
reading raised (a body too large) raised again at the same point, so it
answers exactly as if the lane were not there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The part of the path after the prefix, and the scope (for the query), to
# the endpoint's keyword arguments; None when the request is not one the
# endpoint's FastAPI route would take as it is.
Matcher = Callable[[str, Scope], Mapping[str, str] | None]
# The whole body (and the scope, for its headers) to the endpoint's further
# keyword arguments; None when the FastAPI twin would not take it as it is.
BodyParser = Callable[[bytes, Scope], Mapping[str, Any] | None]
Endpoint = Callable[..., Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    prefix: str
    match: Matcher
    endpoint: Endpoint
    method: str = "GET"
    body: BodyParser | None = None


class HotRoutes:
    def __init__(self, app: ASGIApp, *, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Behind a proxy that strips a root path, the framework matches.
        if scope["type"] == "http" and not scope.get("root_path"):
            method: str = scope["method"]
            path: str = scope["path"]
            for route in self.routes:
                if route.method == method and path.startswith(route.prefix):
                    arguments = route.match(path[len(route.prefix) :], scope)
                    if arguments is None:
                        continue
                    if route.body is None:
                        await self._serve(route, arguments, scope, receive, send)
                    else:
                        await self._serve_body(route, arguments, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve_body(
        self,
        route: HotRoute,
        arguments: Mapping[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        assert route.body is not None
        read: list[Message] = []
        chunks: list[bytes] = []
        failed: Exception | None = None
        try:
            while True:
                message = await receive()
                read.append(message)
                if message["type"] != "http.request":
                    break  # the client left: the framework's answer
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except Exception as exc:  # a body too large: the framework raises it again
            failed = exc
        parsed = None
        if failed is None and read[-1]["type"] == "http.request":
            parsed = route.body(b"".join(chunks), scope)
        replay = _replay(read, failed, receive)
        if parsed is None:
            await self.app(scope, replay, send)
        else:
            await self._serve(route, {**arguments, **parsed}, scope, replay, send)

    async def _serve(
        self,
        route: HotRoute,
        arguments: Mapping[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request=request, **arguments)
        except Exception as exc:
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler_for(handlers: Mapping[Any, Any], exc: Exception) -> Any:
    """The handler ``ExceptionMiddleware`` would pick: the nearest class in the
    error's MRO, short of ``Exception`` (that one is the last resort of the
    outermost middleware, behind our boundary)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


def _replay(read: Sequence[Message], failed: Exception | None, receive: Receive) -> Receive:
    """A receive that gives what was read, in order, then raises what the
    reading raised, then goes on to the client's own."""
    pending = deque(read)
    error = [failed] if failed is not None else []

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        if error:
            raise error.pop()
        return await receive()

    return replay
