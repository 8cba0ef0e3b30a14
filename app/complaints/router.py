from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams
from starlette.types import Scope

from app.auth.dependencies import (
    BEARER_SECURITY,
    CitizenToken,
    CitizenTokenDep,
    CurrentCitizen,
    citizen_token,
)
from app.complaints import admission, identity, service, submission
from app.complaints.schemas import (
    ComplaintCreate,
    ComplaintDetail,
    ComplaintFiled,
    ComplaintPage,
    SupplementCreate,
)
from app.core.db import filing_session, read_session
from app.core.deps import (
    ClockDep,
    FilingSessionDep,
    Services,
    ServicesDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from app.core.hotpath import HotRoute
from app.core.pagination import PageParams, page_params
from app.core.ratelimit import Limit, client_ip, ip_bucket
from app.idempotency import service as idempotency
from app.moderation.dependencies import ContentGateDep, content_gate

router = APIRouter(tags=["complaints"])

FILINGS_PER_HOUR_PER_RESIDENT = 10
FILINGS_PER_HOUR_PER_IP = 60
COMPLAINT_ID_MAX = 64
ComplaintId = Annotated[str, Path(min_length=1, max_length=COMPLAINT_ID_MAX)]
TRACKING_NO_LENGTH = (5, 24)
QUERY_CODE_LENGTH = (4, 16)


@router.post(
    "/complaints",
    response_model=ComplaintFiled,
    status_code=201,
    responses={
        409: {"description": "Idempotency-Key reused with another body"},
        422: {"description": "invalid payload, or content WeChat content security found risky"},
        429: {"description": "rate limited"},
    },
)
async def file_complaint(
    body: ComplaintCreate,
    request: Request,
    token: CitizenTokenDep,
    session: FilingSessionDep,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> ComplaintFiled | JSONResponse:
    return await _file(body, request, token, session, services, idempotency_key)


async def file_complaint_hot(request: Request, body: ComplaintCreate) -> Response:
    """``file_complaint`` beside the routing (``hot_routes``), for a body the
    route takes as it is: its dependencies in the order FastAPI solves them
    (the token, then the session), its answer serialised as FastAPI would."""
    services = Services(request)
    token = await citizen_token(request, services.tokens, services.clock.now())
    async with filing_session(request) as session:
        filed = await _file(
            body, request, token, session, services, request.headers.get("idempotency-key")
        )
    if isinstance(filed, Response):
        return filed
    return Response(filed.model_dump_json(), status_code=201, media_type="application/json")


async def _file(
    body: ComplaintCreate,
    request: Request,
    token: CitizenToken,
    session: AsyncSession,
    services: Services,
    idempotency_key: str | None,
) -> ComplaintFiled | JSONResponse:
    settings = services.settings
    now = services.clock.now()
    limits = [
        Limit(
            f"file:citizen:{identity.limit_key(token.citizen_id)}",
            FILINGS_PER_HOUR_PER_RESIDENT,
            3600,
        ),
        Limit(
            f"file:ip:{ip_bucket(client_ip(request, settings))}",
            FILINGS_PER_HOUR_PER_IP,
            3600,
        ),
    ]
    # One statement where it can be (admission.Ticket); WeChat content
    # security needs the resident's openid before anything is written.
    ticket = (
        await admission.ticket(
            session,
            token=token,
            shared=services.shared,
            key_header=idempotency_key,
            body=body,
            limits=limits,
            now=now,
        )
        if not settings.content_security
        else None
    )
    if ticket is not None:
        done = await submission.file_admitting(
            session, ticket=ticket, body=body, settings=settings, now=now
        )
        if isinstance(done, idempotency.Replay):
            answer = await submission.replay_body(session, done.body)
            return JSONResponse(status_code=done.status_code, content=answer)
        if done is not None:
            return done
    admitted = await admission.admit(
        session,
        token=token,
        shared=services.shared,
        key_header=idempotency_key,
        body=body,
        limits=limits,
        now=now,
    )
    if isinstance(admitted, idempotency.Replay):
        answer = await submission.replay_body(session, admitted.body)
        return JSONResponse(status_code=admitted.status_code, content=answer)
    record = admitted.record
    try:
        # The answer for retries is stored by the filing itself (one statement on PostgreSQL).
        return await submission.file(
            session,
            citizen=admitted.citizen,
            body=body,
            settings=settings,
            now=now,
            gate=content_gate(services),
            record=record,
        )
    except BaseException:
        # Straight to PostgreSQL the filing session autocommits: the key's
        # record was committed by the admission, before the work. Nothing of
        # the filing was written (a risky text, a failed statement), so free
        # the key for a retry. (Behind PgBouncer the rollback takes it too.)
        if record is not None:
            await idempotency.abandon(session, record.id)
        raise


@router.get("/complaints/mine", response_model=ComplaintPage)
async def my_complaints(
    citizen: CurrentCitizen, session: SessionDep, page: Annotated[PageParams, Depends(page_params)]
) -> ComplaintPage:
    items = await service.mine(session, citizen, limit=page.limit, offset=page.offset)
    return ComplaintPage(items=items, next_cursor=page.next_cursor(len(items)))


@router.get(
    "/complaints/{complaint_id}", response_model=ComplaintDetail, openapi_extra=BEARER_SECURITY
)
async def get_complaint(complaint_id: ComplaintId, request: Request) -> Response:
    # The residents' hottest read, so no dependency to solve (FastAPI's solver
    # took as much CPU as the read itself): the token is checked and the
    # session opened here, and the answer is serialised once, as built
    # (response_model stays for the docs). One SELECT: the token's session is
    # checked inside it (no citizen load).
    services = Services(request)
    now = services.clock.now()
    token = await citizen_token(request, services.tokens, now)
    async with read_session(request) as session:
        found = await service.detail(
            session, complaint_id, token, services.store, services.settings, now=now
        )
    return Response(found.model_dump_json(), media_type="application/json")


@router.post(
    "/complaints/{complaint_id}/supplements", response_model=ComplaintDetail, status_code=201
)
async def add_supplement(
    complaint_id: ComplaintId,
    body: SupplementCreate,
    citizen: CurrentCitizen,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    gate: ContentGateDep,
) -> ComplaintDetail:
    return await service.supplement(
        session, complaint_id, citizen, body, store, settings, now=clock.now(), gate=gate
    )


@router.get(
    "/track/{tracking_no}",
    response_model=ComplaintDetail,
    responses={429: {"description": "rate limited"}},
)
async def track(
    tracking_no: Annotated[
        str, Path(min_length=TRACKING_NO_LENGTH[0], max_length=TRACKING_NO_LENGTH[1])
    ],
    query_code: Annotated[
        str, Query(min_length=QUERY_CODE_LENGTH[0], max_length=QUERY_CODE_LENGTH[1])
    ],
    request: Request,
) -> Response:
    # As get_complaint: no dependency to solve, the answer serialised once.
    services = Services(request)
    settings, now = services.settings, services.clock.now()
    await service.limit_tracking(services.shared, client_ip(request, settings), now=now)
    async with read_session(request) as session:
        found = await service.track(
            session, tracking_no, query_code, services.store, settings, now=now
        )
    return Response(found.model_dump_json(), media_type="application/json")


# The two reads and the filing served ahead of the framework's routing
# (app/core/hotpath.py), for exactly the requests the routes above accept as they are.


def _own_case(rest: str, scope: Scope) -> Mapping[str, str] | None:
    # "mine" is its own route, declared above; every other GET /complaints/{x} is this one.
    if "/" in rest or rest == "mine" or not 1 <= len(rest) <= COMPLAINT_ID_MAX:
        return None
    return {"complaint_id": rest}


def _tracked_case(rest: str, scope: Scope) -> Mapping[str, str] | None:
    low, high = TRACKING_NO_LENGTH
    if "/" in rest or not low <= len(rest) <= high:
        return None
    codes = QueryParams(scope.get("query_string", b"")).getlist("query_code")
    if len(codes) != 1 or not QUERY_CODE_LENGTH[0] <= len(codes[0]) <= QUERY_CODE_LENGTH[1]:
        return None
    return {"tracking_no": rest, "query_code": codes[0]}


def _filing_path(rest: str, scope: Scope) -> Mapping[str, str] | None:
    return {} if rest == "" else None


def _filing_body(body: bytes, scope: Scope) -> Mapping[str, Any] | None:
    """The body as ``file_complaint`` takes it, or None for the framework's
    answer: a JSON content type (FastAPI's test, for the types we take here),
    JSON that parses as Starlette parses it, and a body that validates as
    FastAPI validates it (from attributes, in Python mode)."""
    if not body or not _json_content_type(scope):
        return None
    try:
        return {"body": ComplaintCreate.model_validate(json.loads(body), from_attributes=True)}
    except Exception:  # invalid: the framework reads it again and says why
        return None


def _json_content_type(scope: Scope) -> bool:
    # Starlette's Headers.get: the first such header.
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return bool(kind == b"application/json")
    return False


def hot_routes(prefix: str) -> list[HotRoute]:
    return [
        HotRoute(f"{prefix}/complaints/", _own_case, get_complaint),
        HotRoute(f"{prefix}/track/", _tracked_case, track),
        HotRoute(
            f"{prefix}/complaints",
            _filing_path,
            file_complaint_hot,
            method="POST",
            body=_filing_body,
        ),
    ]
