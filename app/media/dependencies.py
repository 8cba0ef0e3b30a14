"""Uploads come from residents and from staff (evidence); either token works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import get_citizen_auth
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, TokensDep
from app.core.errors import Unauthorized
from app.staff.dependencies import BearerDep, get_staff_auth


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
    credentials: BearerDep,
) -> Uploader:
    return await _uploader(session, tokens, clock, credentials)


async def get_reading_uploader(
    session: ReadSessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: BearerDep,
) -> Uploader:
    """The same check in a read session, for a route that only reads (on
    SQLite it takes no write lock: ``ReadingCitizen``'s counterpart)."""
    return await _uploader(session, tokens, clock, credentials)


async def _uploader(
    session: AsyncSession, tokens: TokensDep, clock: ClockDep, credentials: BearerDep
) -> Uploader:
    if credentials is None:
        raise Unauthorized("请先登录", headers={"WWW-Authenticate": "Bearer"})
    claims = tokens.decode(credentials.credentials, now=clock.now())
    # The residents' and staff checks themselves (live session, active account).
    if claims.kind == "citizen":
        citizen = await get_citizen_auth(session, tokens, clock, credentials)
        return Uploader("citizen", citizen.citizen.id)
    staff = await get_staff_auth(session, tokens, clock, credentials)
    return Uploader("staff", staff.user.id)


CurrentUploader = Annotated[Uploader, Depends(get_uploader)]
# For a route that only reads, with ``ReadSessionDep`` (one session each).
ReadingUploader = Annotated[Uploader, Depends(get_reading_uploader)]
