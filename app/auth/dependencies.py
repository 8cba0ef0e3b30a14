from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials

from app.core.deps import ClockDep, SessionDep, TokensDep
from app.core.errors import Forbidden, Unauthorized
from app.models import Citizen
from app.staff.dependencies import bearer


async def get_current_citizen(
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Citizen:
    if credentials is None:
        raise Unauthorized("请先登录", headers={"WWW-Authenticate": "Bearer"})
    claims = tokens.decode(credentials.credentials, now=clock.now())
    if claims.kind != "citizen":
        raise Forbidden("该接口供群众使用")
    citizen = await session.get(Citizen, int(claims.subject))
    if citizen is None:
        raise Unauthorized("登录已失效，请重新登录")
    return citizen


CurrentCitizen = Annotated[Citizen, Depends(get_current_citizen)]


async def get_optional_citizen(
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Citizen | None:
    """For public pages that only use a login to pick defaults (the village)."""
    if credentials is None:
        return None
    return await get_current_citizen(session, tokens, clock, credentials)


OptionalCitizen = Annotated[Citizen | None, Depends(get_optional_citizen)]
