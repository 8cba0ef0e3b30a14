from __future__ import annotations

from fastapi import APIRouter, Request

from app.auth import service
from app.auth.dependencies import CurrentCitizen
from app.auth.schemas import CitizenRead, CitizenToken, DevLogin, RefreshRequest, WeChatLogin
from app.core.deps import ClockDep, SessionDep, SettingsDep, SharedDep, TokensDep, WeChatDep
from app.core.errors import NotFound, Unauthorized
from app.core.ratelimit import client_ip, enforce
from app.models import Citizen
from app.wechat.client import Session

router = APIRouter(prefix="/auth", tags=["auth"])

LOGIN_LIMIT_PER_IP = 30  # per minute; a village office may share one IP


@router.post("/wechat-login", response_model=CitizenToken)
async def wechat_login(
    body: WeChatLogin,
    request: Request,
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    wechat: WeChatDep,
    shared: SharedDep,
) -> CitizenToken:
    now = clock.now()
    await enforce(
        shared,
        f"login:ip:{client_ip(request)}",
        limit=LOGIN_LIMIT_PER_IP,
        window_seconds=60,
        now=now,
        what="登录",
    )
    identity = await wechat.code_to_session(body.code)
    citizen = await service.find_or_create(session, identity, now=now)
    place = await service.apply_scene(session, citizen, body.scene)
    return service.issue_tokens(tokens, citizen, place, now=now)


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
    return service.issue_tokens(tokens, citizen, place, now=now)


@router.post("/refresh", response_model=CitizenToken)
async def refresh(
    body: RefreshRequest, session: SessionDep, tokens: TokensDep, clock: ClockDep
) -> CitizenToken:
    now = clock.now()
    claims = tokens.decode(body.refresh_token, now=now, expected_type="refresh")
    citizen = await session.get(Citizen, int(claims.subject)) if claims.kind == "citizen" else None
    if citizen is None:
        raise Unauthorized("登录已失效，请重新登录")
    return service.issue_tokens(tokens, citizen, None, now=now)


@router.get("/me", response_model=CitizenRead)
async def me(citizen: CurrentCitizen) -> CitizenRead:
    return CitizenRead(id=citizen.id, region_code=citizen.region_code)
