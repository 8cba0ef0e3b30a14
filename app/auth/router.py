from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.auth import service, sessions
from app.auth.dependencies import CurrentCitizenAuth, ReadingCitizen
from app.auth.schemas import CitizenRead, CitizenToken, DevLogin, RefreshRequest, WeChatLogin
from app.core.db import write_session
from app.core.deps import ClockDep, SessionDep, SettingsDep, SharedDep, TokensDep, WeChatDep
from app.core.errors import NotFound
from app.core.ratelimit import client_ip, enforce, ip_bucket
from app.core.responses import error_response
from app.wechat.client import Session

router = APIRouter(prefix="/auth", tags=["auth"])

LOGIN_LIMIT_PER_IP = 30  # per minute; a village office may share one IP


@router.post(
    "/wechat-login",
    response_model=CitizenToken,
    responses={
        401: {"description": "WeChat refused the login code"},
        429: {"description": "rate limited"},
    },
)
async def wechat_login(
    body: WeChatLogin,
    request: Request,
    tokens: TokensDep,
    clock: ClockDep,
    wechat: WeChatDep,
    shared: SharedDep,
    settings: SettingsDep,
) -> CitizenToken:
    # WeChat answers the code first and the session begins after it: a
    # session taken as the route's dependency held, on SQLite, the process's
    # writer lock through WeChat's round trip, so every write of the process
    # (filings, cadres' actions) waited on each resident's login.
    now = clock.now()
    await enforce(
        shared,
        f"login:ip:{ip_bucket(client_ip(request, settings))}",
        limit=LOGIN_LIMIT_PER_IP,
        window_seconds=60,
        now=now,
        what="登录",
    )
    identity = await wechat.code_to_session(body.code)
    async with write_session(request) as session:
        citizen = await service.find_or_create(session, identity, now=now)
        place = await service.apply_scene(session, citizen, body.scene)
        return await service.issue_tokens(session, tokens, citizen, place, now=now)


@router.post("/dev-login", response_model=CitizenToken, include_in_schema=False)
async def dev_login(
    body: DevLogin, session: SessionDep, tokens: TokensDep, clock: ClockDep, settings: SettingsDep
) -> CitizenToken:
    """Skips WeChat; exists only when YDT_DEV_LOGIN_ENABLED and never in production."""
    if not settings.dev_login_enabled or settings.env == "production":
        raise NotFound("Not Found")
    now = clock.now()
    citizen = await service.find_or_create(session, Session(f"dev-{body.openid}", None), now=now)
    place = await service.apply_scene(session, citizen, body.scene)
    return await service.issue_tokens(session, tokens, citizen, place, now=now)


@router.post(
    "/refresh",
    response_model=CitizenToken,
    responses={401: {"description": "refresh token invalid, expired, revoked or already used"}},
)
async def refresh(
    body: RefreshRequest, session: SessionDep, tokens: TokensDep, clock: ClockDep
) -> CitizenToken | JSONResponse:
    """A new token pair; the refresh token presented stops working (rotation).

    Presenting a refresh token that was already used revokes its whole
    session: both the thief and the owner must log in again.
    """
    result = await service.refresh(session, tokens, body.refresh_token, now=clock.now())
    if isinstance(result, CitizenToken):
        return result
    # Returned, not raised: a revocation for reuse must be committed.
    return error_response(result)


@router.post("/logout", status_code=204, response_class=Response)
async def logout(auth: CurrentCitizenAuth, session: SessionDep, clock: ClockDep) -> Response:
    """Ends this login's session: its access and refresh tokens stop working."""
    await sessions.revoke(session, auth.session_id, reason="logout", now=clock.now())
    return Response(status_code=204)


@router.get("/me", response_model=CitizenRead)
async def me(citizen: ReadingCitizen) -> CitizenRead:
    return CitizenRead(id=citizen.id, region_code=citizen.region_code)
