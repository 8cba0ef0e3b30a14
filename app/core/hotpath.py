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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

# The part of the path after the prefix, and the scope (for the query), to
# the endpoint's keyword arguments; None when the request is not one the
# endpoint's FastAPI route would take as it is.
Matcher = Callable[[str, Scope], Mapping[str, str] | None]
Endpoint = Callable[..., Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    prefix: str
    match: Matcher
    endpoint: Endpoint


class HotRoutes:
    def __init__(self, app: ASGIApp, *, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Behind a proxy that strips a root path, the framework matches.
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path: str = scope["path"]
            for route in self.routes:
                if path.startswith(route.prefix):
                    arguments = route.match(path[len(route.prefix) :], scope)
                    if arguments is not None:
                        await self._serve(route, arguments, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        route: HotRoute,
        arguments: Mapping[str, str],
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
