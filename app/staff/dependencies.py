"""Who is calling: staff tokens, loaded and checked on every request."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.deps import ClockDep, SessionDep, TokensDep
from app.core.errors import Forbidden, Unauthorized
from app.models import StaffUser
from app.models.enums import StaffRole

bearer = HTTPBearer(auto_error=False, description="Bearer token from /staff/auth/login")


async def get_current_staff(
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> StaffUser:
    if credentials is None:
        raise Unauthorized("需要登录", headers={"WWW-Authenticate": "Bearer"})
    claims = tokens.decode(credentials.credentials, now=clock.now())
    if claims.kind != "staff":
        raise Forbidden("该接口仅限工作人员使用")
    user = await session.get(StaffUser, int(claims.subject))
    if user is None or not user.active:
        raise Unauthorized("账号不存在或已停用")
    return user


CurrentStaff = Annotated[StaffUser, Depends(get_current_staff)]


def require_roles(*roles: StaffRole) -> Callable[..., Coroutine[Any, Any, StaffUser]]:
    allowed = frozenset(roles)

    async def _check(user: CurrentStaff) -> StaffUser:
        if user.role not in allowed:
            raise Forbidden("当前角色无权执行此操作")
        return user

    return _check


AdminStaff = Annotated[StaffUser, Depends(require_roles(StaffRole.admin))]
