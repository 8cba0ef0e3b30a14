"""Uploads come from residents and from staff (evidence); either token works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials

from app.core.deps import ClockDep, SessionDep, TokensDep
from app.core.errors import Unauthorized
from app.models import Citizen, StaffUser
from app.staff.dependencies import bearer


@dataclass(frozen=True, slots=True)
class Uploader:
    kind: Literal["citizen", "staff"]
    id: int

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


async def get_uploader(
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Uploader:
    if credentials is None:
        raise Unauthorized("请先登录", headers={"WWW-Authenticate": "Bearer"})
    claims = tokens.decode(credentials.credentials, now=clock.now())
    model = Citizen if claims.kind == "citizen" else StaffUser
    row = await session.get(model, int(claims.subject))
    if row is None or (isinstance(row, StaffUser) and not row.active):
        raise Unauthorized("登录已失效，请重新登录")
    return Uploader(claims.kind, int(claims.subject))


CurrentUploader = Annotated[Uploader, Depends(get_uploader)]
