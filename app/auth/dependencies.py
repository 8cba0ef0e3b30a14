"""Who is calling, for residents' endpoints: a citizen token of a live session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select

from app.auth import sessions
from app.core.deps import ClockDep, SessionDep, TokensDep
from app.core.errors import Forbidden, Unauthorized
from app.models import Citizen, SessionSubject
from app.staff.dependencies import bearer


@dataclass(frozen=True, slots=True)
class CitizenAuth:
    citizen: Citizen
    session_id: str


async def get_citizen_auth(
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> CitizenAuth:
    if credentials is None:
        raise Unauthorized("请先登录", headers={"WWW-Authenticate": "Bearer"})
    now = clock.now()
    claims = tokens.decode(credentials.credentials, now=now)
    if claims.kind != "citizen":
        raise Forbidden("该接口供群众使用")
    sid = sessions.require_session(claims)
    # One query: the resident, only while the token's session still works.
    citizen = (
        await session.execute(
            select(Citizen).where(
                Citizen.id == claims.subject_id,
                sessions.live(sid, SessionSubject.citizen, Citizen.id, now),
            )
        )
    ).scalar_one_or_none()
    if citizen is None:
        raise Unauthorized("登录已失效，请重新登录")
    return CitizenAuth(citizen, sid)


CurrentCitizenAuth = Annotated[CitizenAuth, Depends(get_citizen_auth)]


async def get_current_citizen(auth: CurrentCitizenAuth) -> Citizen:
    return auth.citizen


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
    return (await get_citizen_auth(session, tokens, clock, credentials)).citizen


OptionalCitizen = Annotated[Citizen | None, Depends(get_optional_citizen)]
