"""``/open311/v2``: Open311 GeoReport v2 (and its Service Discovery), in JSON and XML.

Every answer, errors included, is in the format the URL asks for: errors are
``[{code, description}]`` / ``<errors><error>…</error></errors>`` with 400,
403 (api_key), 404 or 429, never this API's own error shape, because GeoReport
clients parse them. ``Open311Route`` does that for every route here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, SharedDep
from app.core.errors import (
    RETRY_AFTER_SECONDS,
    AppError,
    NotFound,
    ServiceUnavailable,
    unavailable_error,
    validation_errors,
)
from app.core.ratelimit import client_ip, enforce, ip_bucket
from app.open311 import filing, keys, service
from app.open311.formats import Format, error, format_of_path, render
from app.open311.schemas import (
    Discovery,
    Open311Error,
    RequestFiled,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenAnswer,
)

PREFIX = "/open311/v2"
STATUS_SHOWN = {401: 403, 409: 400, 422: 400}
# Before the key is checked: slows anyone trying keys, whatever the key's own limit.
POSTS_PER_MINUTE_PER_IP = 60


def spec_error(fmt: Format, exc: Exception) -> Response | None:
    """The GeoReport answer for an error raised while serving a GeoReport route."""
    down = unavailable_error(exc)
    if down is not None:
        exc = down
    if isinstance(exc, AppError):
        headers = dict(exc.headers or {})
        if isinstance(exc, ServiceUnavailable):
            headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        status = STATUS_SHOWN.get(exc.status_code, exc.status_code)
        return error(fmt, status, exc.detail, headers=headers or None)
    if isinstance(exc, RequestValidationError):
        listed = validation_errors(exc.errors())
        first = listed[0] if listed else {"loc": ["query"], "reason": "请求参数有误"}
        where = [str(p) for p in first["loc"]]
        # An unknown format in the path names a resource that does not exist.
        status = 404 if where and where[0] == "path" else 400
        return error(fmt, status, f"{'.'.join(where[1:]) or where[0]}：{first['reason']}")
    if isinstance(exc, HTTPException):  # body too large, read while parsing the form
        return error(fmt, exc.status_code, str(exc.detail), headers=exc.headers)
    return None


def url_error(path: str, message: str) -> Response:
    """A control character in the URL (refused by app.core.boundary before routing)."""
    return error(format_of_path(path), 400, message)


class Open311Route(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                found = spec_error(format_of_path(request.url.path), exc)
                if found is None:
                    raise
                return found

        return answer


def _docs(model: Any, root: str, *codes: int) -> dict[int | str, dict[str, Any]]:
    """Both formats of the success answer, and the GeoReport errors, for OpenAPI."""
    xml = {"text/xml": {"schema": {"type": "string", "description": f"<{root}>…</{root}>"}}}
    out: dict[int | str, dict[str, Any]] = {
        200: {"model": model, "content": xml, "description": "JSON: a bare array; XML: " + root}
    }
    for code in codes:
        out[code] = {"model": list[Open311Error], "content": {"text/xml": {}}}
    return out


router = APIRouter(prefix=PREFIX, tags=["open311"], route_class=Open311Route)
FormatPath = Annotated[Format, Path(description="json or xml")]
Text = Annotated[str | None, Query(max_length=4000)]


async def _reads(
    request: Request, settings: SettingsDep, clock: ClockDep, shared: SharedDep
) -> None:
    await enforce(
        shared,
        f"open311:read:{ip_bucket(client_ip(request, settings))}",
        limit=settings.open311_reads_per_minute,
        window_seconds=60,
        now=clock.now(),
        what="查询",
    )


@router.get(
    "/discovery.{format}", response_model=Discovery, responses=_docs(Discovery, "discovery", 404)
)
async def discovery(format: FormatPath, settings: SettingsDep) -> Response:
    return render(format, "discovery", service.discovery(settings).model_dump(mode="json"))


@router.get(
    "/services.{format}",
    response_model=list[Service],
    responses=_docs(list[Service], "services", 404, 429),
)
async def services(
    format: FormatPath,
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
    jurisdiction_id: Text = None,
) -> Response:
    await _reads(request, settings, clock, shared)
    found = await service.services(session)
    return render(format, "services", [s.model_dump() for s in found])


@router.get(
    "/services/{service_code}.{format}",
    response_model=ServiceDefinition,
    responses=_docs(ServiceDefinition, "service_definition", 400, 404, 429),
)
async def service_definition(
    service_code: Annotated[str, Path(max_length=16)],
    format: FormatPath,
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
    jurisdiction_id: Text = None,
) -> Response:
    await _reads(request, settings, clock, shared)
    found = await service.definition(session, service_code)
    return render(format, "service_definition", found.model_dump())


@router.get(
    "/requests.{format}",
    response_model=list[ServiceRequest],
    responses=_docs(list[ServiceRequest], "service_requests", 400, 404, 429),
)
async def requests(
    format: FormatPath,
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
    service_request_id: Text = None,
    service_code: Text = None,
    start_date: Annotated[str | None, Query(max_length=64)] = None,
    end_date: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=64, description="open, closed or both")] = None,
    jurisdiction_id: Text = None,
) -> Response:
    await _reads(request, settings, clock, shared)
    where = service.request_filter(
        service_request_id=service_request_id,
        service_code=service_code,
        start_date=start_date,
        end_date=end_date,
        status=status,
        now=clock.now(),
    )
    found = await service.requests(session, where, settings=settings)
    return render(format, "service_requests", [r.model_dump() for r in found])


@router.get(
    "/requests/{service_request_id}.{format}",
    response_model=list[ServiceRequest],
    responses=_docs(list[ServiceRequest], "service_requests", 400, 404, 429),
)
async def one_request(
    service_request_id: Annotated[str, Path(max_length=64)],
    format: FormatPath,
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
    jurisdiction_id: Text = None,
) -> Response:
    await _reads(request, settings, clock, shared)
    found = await service.one_request(session, service_request_id, settings=settings)
    return render(format, "service_requests", [r.model_dump() for r in found])


@router.get(
    "/tokens/{token}.{format}",
    response_model=list[TokenAnswer],
    responses=_docs(list[TokenAnswer], "service_requests", 400, 404, 429),
)
async def token(
    token: Annotated[str, Path(max_length=64)],
    format: FormatPath,
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
    jurisdiction_id: Text = None,
) -> Response:
    await _reads(request, settings, clock, shared)
    found = await service.token(session, token)
    return render(format, "service_requests", [t.model_dump() for t in found])


FormText = Annotated[str | None, Form(max_length=4000)]


@router.post(
    "/requests.{format}",
    response_model=list[RequestFiled],
    responses=_docs(list[RequestFiled], "service_requests", 400, 403, 404, 413, 429),
)
async def file_request(
    format: FormatPath,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
    api_key: FormText = None,
    service_code: FormText = None,
    jurisdiction_id: FormText = None,
    lat: FormText = None,
    long: FormText = None,
    address_string: FormText = None,
    address_id: FormText = None,
    email: FormText = None,
    device_id: FormText = None,
    account_id: FormText = None,
    first_name: FormText = None,
    last_name: FormText = None,
    phone: FormText = None,
    description: FormText = None,
    media_url: FormText = None,
    priority: Annotated[
        list[str] | None,
        Form(alias="attribute[priority][]", description="see services/{code} for attributes"),
    ] = None,
) -> Response:
    """Form-encoded, as the specification says; the declared fields document it,
    and the form is read whole so any ``attribute[code]`` reaches the service."""
    now = clock.now()
    await enforce(
        shared,
        f"open311:file:ip:{ip_bucket(client_ip(request, settings))}",
        limit=POSTS_PER_MINUTE_PER_IP,
        window_seconds=60,
        now=now,
        what="提交",
    )
    key = await keys.authenticate(session, api_key, now=now)
    await enforce(
        shared,
        f"open311:file:key:{key.id}",
        limit=key.requests_per_hour,
        window_seconds=3600,
        now=now,
        what="提交",
    )
    form = await request.form()
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    filed = await filing.file(session, key=key, pairs=pairs, settings=settings, now=now)
    return render(format, "service_requests", [f.model_dump() for f in filed])


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
async def unknown(rest: str) -> Response:
    """Anything else under /open311/v2 is a GeoReport 404, in the format asked for."""
    raise NotFound("没有这个 GeoReport 资源")
