from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
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
    ReadingCitizen,
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
from app.core.config import Settings
from app.core.db import filing_session, read_session, write_session
from app.core.deps import (
    ClockDep,
    ReadSessionDep,
    Services,
    ServicesDep,
    SettingsDep,
    StoreDep,
)
from app.core.hotpath import HotRoute
from app.core.pagination import PageParams, page_params
from app.core.ratelimit import Limit, client_ip, ip_bucket
from app.idempotency import service as idempotency
from app.moderation import service as moderation
from app.moderation.dependencies import content_gate, judged_first
from app.wechat.client import SCENE_FORUM

logger = logging.getLogger(__name__)
router = APIRouter(tags=["complaints"])

FILINGS_PER_HOUR_PER_RESIDENT = 10
FILINGS_PER_HOUR_PER_IP = 60
# What WeChat's verdict names when it refuses a supplement's text.
WHAT_SUPPLEMENT = "补充内容"
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
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> ComplaintFiled | JSONResponse:
    return await _file(body, request, token, services, idempotency_key)


async def file_complaint_hot(request: Request, body: ComplaintCreate) -> Response:
    """``file_complaint`` beside the routing (``hot_routes``), for a body the
    route takes as it is: the token first, as FastAPI solves the route's
    dependencies, and its answer serialised as FastAPI would."""
    services = Services(request)
    token = await citizen_token(request, services.tokens, services.clock.now())
    filed = await _file(body, request, token, services, request.headers.get("idempotency-key"))
    if isinstance(filed, Response):
        return filed
    return Response(filed.model_dump_json(), status_code=201, media_type="application/json")


async def _file(
    body: ComplaintCreate,
    request: Request,
    token: CitizenToken,
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
    # WeChat content security judges the text after the admission (it needs
    # the resident's openid) and before anything of the case is written
    # (risky is a 422). WeChat answers over the internet, in up to
    # YDT_CONTENT_CHECK_TIMEOUT_SECONDS, so no session is held while it does:
    # the admission commits first and the case is written in a session of
    # its own. Inside one transaction, SQLite kept its database's write lock
    # through WeChat's answer, so every other writer of every process (a
    # cadre's action, the worker, the next filing) waited for it: at WeChat's
    # 100 ms, ten filings a second at most (bench/README.md); behind
    # PgBouncer the transaction held a server connection and the address's
    # rate-limit row as long. Straight to PostgreSQL the admission already
    # committed on its own, and a filing that fails or is refused after it
    # frees its key (``idempotency.abandon``); now it runs so everywhere.
    checked = settings.content_security
    async with filing_session(request) as session:
        if not checked:
            # One statement where it can be (admission.Ticket).
            ticket = await admission.ticket(
                session,
                token=token,
                shared=services.shared,
                key_header=idempotency_key,
                body=body,
                limits=limits,
                now=now,
            )
            if ticket is not None:
                done = await submission.file_admitting(
                    session, ticket=ticket, body=body, settings=settings, now=now
                )
                if isinstance(done, idempotency.Replay):
                    return await _replay(session, done)
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
            return await _replay(session, admitted)
        if not checked:
            return await _write(session, admitted, body, settings, now, text=None)
    try:
        text = await moderation.check_text(
            content_gate(services),
            body.content,
            citizen=admitted.citizen,
            scene=SCENE_FORUM,
            what=submission.WHAT_CONTENT,
            now=now,
        )
        async with filing_session(request) as session:
            return await _write(session, admitted, body, settings, now, text=text)
    except BaseException:
        if admitted.record is not None:  # the admission's own session has ended
            await _abandon(request, admitted.record.id)
        raise


async def _write(
    session: AsyncSession,
    admitted: admission.Admitted,
    body: ComplaintCreate,
    settings: Settings,
    now: datetime,
    *,
    text: moderation.TextCheck | None,
) -> ComplaintFiled:
    """The admitted filing's case; the answer for retries is stored by the
    filing itself (one statement on PostgreSQL)."""
    try:
        return await submission.file(
            session,
            citizen=admitted.citizen,
            body=body,
            settings=settings,
            now=now,
            text=text,
            record=admitted.record,
        )
    except BaseException:
        # Straight to PostgreSQL the filing session autocommits: the key's
        # record was committed by the admission. Nothing of the filing was
        # written (a failed statement), so free the key for a retry. (In a
        # transaction the rollback takes it too.)
        if admitted.record is not None:
            await idempotency.abandon(session, admitted.record.id)
        raise


async def _replay(session: AsyncSession, replay: idempotency.Replay) -> JSONResponse:
    answer = await submission.replay_body(session, replay.body)
    return JSONResponse(status_code=replay.status_code, content=answer)


async def _abandon(request: Request, record_id: int) -> None:
    """Free a key whose filing failed after its admission committed. Best
    effort: if the database is what failed, the retry sees the first attempt
    as still running (409) until the record expires, and the original error,
    not this one, is the answer."""
    try:
        async with filing_session(request) as session:
            await idempotency.abandon(session, record_id)
    except Exception:
        logger.warning("could not free an idempotency key after a failed filing")


@router.get("/complaints/mine", response_model=ComplaintPage)
async def my_complaints(
    citizen: ReadingCitizen,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
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
    request: Request,
    token: CitizenTokenDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> ComplaintDetail:
    citizen, text = await judged_first(
        request, token, body.content, scene=SCENE_FORUM, what=WHAT_SUPPLEMENT
    )
    async with write_session(request) as session:
        return await service.supplement(
            session, complaint_id, citizen, body, store, settings, now=clock.now(), text=text
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
