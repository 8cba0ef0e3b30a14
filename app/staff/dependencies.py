"""Who is calling: staff tokens, loaded and checked on every request.

A staff token works while its account is active and its session is live
(not revoked by logout, an admin, disabling or a password reset): both are
checked in the one query that loads the account.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.core.clock import Clock
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, TokensDep
from app.core.errors import Forbidden, Unauthorized
from app.core.security import TokenService
from app.models import SessionSubject, StaffUser
from app.models.enums import StaffRole

bearer = HTTPBearer(auto_error=False, description="Bearer token from /staff/auth/login")


@dataclass(frozen=True, slots=True)
class StaffAuth:
    user: StaffUser
    session_id: str


async def _authenticate(
    session: AsyncSession,
    tokens: TokenService,
    clock: Clock,
    credentials: HTTPAuthorizationCredentials | None,
) -> StaffAuth:
    if credentials is None:
        raise Unauthorized("需要登录", headers={"WWW-Authenticate": "Bearer"})
    now = clock.now()
    claims = tokens.decode(credentials.credentials, now=now)
    if claims.kind != "staff":
        raise Forbidden("该接口仅限工作人员使用")
    sid = sessions.require_session(claims)
    user = (
        await session.execute(
            select(StaffUser).where(
                StaffUser.id == claims.subject_id,
                StaffUser.active.is_(True),
                sessions.live(sid, SessionSubject.staff, StaffUser.id, now),
            )
        )
    ).scalar_one_or_none()
    if user is None:
        raise Unauthorized("账号不存在、已停用或登录已失效，请重新登录")
    return StaffAuth(user, sid)


# The bearer credentials as FastAPI reads them (and documents the scheme),
# for staff, residents and uploaders alike.
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_staff_auth(
    session: SessionDep, tokens: TokensDep, clock: ClockDep, credentials: BearerDep
) -> StaffAuth:
    return await _authenticate(session, tokens, clock, credentials)


async def get_reading_staff_auth(
    session: ReadSessionDep, tokens: TokensDep, clock: ClockDep, credentials: BearerDep
) -> StaffAuth:
    """The same check in a read session, for a route that only reads: on
    SQLite it then takes neither the database's write lock nor the
    process's writer lock, so a cadre's list or a leader's statistics do
    not hold up residents' filings (nor wait behind them)."""
    return await _authenticate(session, tokens, clock, credentials)


CurrentStaffAuth = Annotated[StaffAuth, Depends(get_staff_auth)]


async def get_current_staff(auth: CurrentStaffAuth) -> StaffUser:
    return auth.user


async def get_reading_staff(
    auth: Annotated[StaffAuth, Depends(get_reading_staff_auth)],
) -> StaffUser:
    return auth.user


CurrentStaff = Annotated[StaffUser, Depends(get_current_staff)]
# For a route that only reads, with ``ReadSessionDep`` (one session each).
ReadingStaff = Annotated[StaffUser, Depends(get_reading_staff)]


def require_roles(
    *roles: StaffRole, reading: bool = False
) -> Callable[..., Coroutine[Any, Any, StaffUser]]:
    """A dependency admitting these roles only; ``reading`` checks the login in
    a read session (``ReadingStaff``), for a route that only reads."""
    allowed = frozenset(roles)

    def admit(user: StaffUser) -> StaffUser:
        if user.role not in allowed:
            raise Forbidden("当前角色无权执行此操作")
        return user

    # Two functions, because FastAPI reads the parameter's annotation by name
    # in this module (annotations are strings here).
    async def _check(user: CurrentStaff) -> StaffUser:
        return admit(user)

    async def _check_reading(user: ReadingStaff) -> StaffUser:
        return admit(user)

    return _check_reading if reading else _check


AdminStaff = Annotated[StaffUser, Depends(require_roles(StaffRole.admin))]
ReadingAdmin = Annotated[StaffUser, Depends(require_roles(StaffRole.admin, reading=True))]
