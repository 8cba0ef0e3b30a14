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

from app.auth import sessions
from app.core.deps import ClockDep, SessionDep, TokensDep
from app.core.errors import Forbidden, Unauthorized
from app.models import SessionSubject, StaffUser
from app.models.enums import StaffRole

bearer = HTTPBearer(auto_error=False, description="Bearer token from /staff/auth/login")


@dataclass(frozen=True, slots=True)
class StaffAuth:
    user: StaffUser
    session_id: str


async def get_staff_auth(
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
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


CurrentStaffAuth = Annotated[StaffAuth, Depends(get_staff_auth)]


async def get_current_staff(auth: CurrentStaffAuth) -> StaffUser:
    return auth.user


CurrentStaff = Annotated[StaffUser, Depends(get_current_staff)]


def require_roles(*roles: StaffRole) -> Callable[..., Coroutine[Any, Any, StaffUser]]:
    allowed = frozenset(roles)

    async def _check(user: CurrentStaff) -> StaffUser:
        if user.role not in allowed:
            raise Forbidden("当前角色无权执行此操作")
        return user

    return _check


AdminStaff = Annotated[StaffUser, Depends(require_roles(StaffRole.admin))]
