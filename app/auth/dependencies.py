"""Who is calling, for residents' endpoints: a citizen token of a live session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import ColumnElement, Integer, String, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.core import driver
from app.core.db import UTCDateTime
from app.core.deps import ClockDep, ReadSessionDep, ServicesDep, SessionDep, TokensDep
from app.core.errors import Forbidden, Unauthorized
from app.core.security import TokenService
from app.models import Citizen, SessionSubject
from app.staff.dependencies import BearerDep, bearer


@dataclass(frozen=True, slots=True)
class CitizenAuth:
    citizen: Citizen
    session_id: str


# Built once with bind parameters and run on the driver connection where it
# may (app/core/driver.py): the filing's first statement (bench/).
_CITIZEN_COLUMNS = tuple(Citizen.__table__.columns)
_CITIZEN_KEYS = tuple(c.key for c in _CITIZEN_COLUMNS)
# The resident's row while the session (sid) works: one statement, or a part
# of the filing's admission (app/complaints/admission.py).
LIVE_CITIZEN = select(*_CITIZEN_COLUMNS).where(
    Citizen.id == bindparam("cid", type_=Integer),
    sessions.live(
        bindparam("sid", type_=String),  # type: ignore[arg-type]
        SessionSubject.citizen,
        Citizen.id,
        bindparam("now", type_=UTCDateTime()),  # type: ignore[arg-type]
    ),
)


def citizen_of(row: Sequence[Any]) -> Citizen:
    """The resident from the first columns of a ``LIVE_CITIZEN`` row; transient,
    for reading: a filing changes nothing of the resident."""
    return Citizen.built(**dict(zip(_CITIZEN_KEYS, row[: len(_CITIZEN_KEYS)], strict=True)))


@dataclass(frozen=True, slots=True)
class CitizenToken:
    """A resident's token, checked for signature and expiry only.

    For one-statement reads: the query puts ``live(now)`` in its WHERE clause
    instead of loading the resident first; when it finds nothing,
    ``require_live`` tells a dead session (401) from a missing row (404).
    """

    citizen_id: int
    session_id: str

    def live(self, now: datetime) -> ColumnElement[bool]:
        return exists().where(
            Citizen.id == self.citizen_id,
            sessions.live(self.session_id, SessionSubject.citizen, Citizen.id, now),
        )

    def live_params(self, now: datetime) -> dict[str, Any]:
        """The bind parameters of ``LIVE_CITIZEN`` for this token."""
        return {"cid": self.citizen_id, "sid": self.session_id, "now": now}

    async def citizen(self, session: AsyncSession, now: datetime) -> Citizen:
        """The resident, only while the token's session works (one query)."""
        found = await driver.first(session, LIVE_CITIZEN, self.live_params(now))
        if found is None:
            raise sessions.expired()
        return citizen_of(found)

    async def require_live(self, session: AsyncSession, now: datetime) -> None:
        if not (await session.execute(select(self.live(now)))).scalar_one():
            raise sessions.expired()


def _claims(
    tokens: TokenService, credentials: HTTPAuthorizationCredentials | None, now: datetime
) -> tuple[int, str]:
    if credentials is None:
        raise Unauthorized("请先登录", headers={"WWW-Authenticate": "Bearer"})
    claims = tokens.decode(credentials.credentials, now=now)
    if claims.kind != "citizen":
        raise Forbidden("该接口供群众使用")
    return claims.subject_id, sessions.require_session(claims)


# For a route that solves no dependency (``citizen_token``): the bearer
# scheme, documented as the dependency would have documented it.
BEARER_SECURITY: dict[str, Any] = {"security": [{bearer.scheme_name: []}]}


async def citizen_token(request: Request, tokens: TokenService, now: datetime) -> CitizenToken:
    """The resident's token, for a hot route that solves no dependency of its
    own (FastAPI's solver cost as much CPU as the read): the same bearer
    scheme, called directly. Declare ``openapi_extra=BEARER_SECURITY``."""
    return CitizenToken(*_claims(tokens, await bearer(request), now))


async def get_citizen_token(services: ServicesDep, credentials: BearerDep) -> CitizenToken:
    return CitizenToken(*_claims(services.tokens, credentials, services.clock.now()))


CitizenTokenDep = Annotated[CitizenToken, Depends(get_citizen_token)]


async def get_citizen_auth(
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: BearerDep,
) -> CitizenAuth:
    now = clock.now()
    subject_id, sid = _claims(tokens, credentials, now)
    # One query: the resident, only while the token's session still works.
    citizen = (
        await session.execute(
            select(Citizen).where(
                Citizen.id == subject_id,
                sessions.live(sid, SessionSubject.citizen, Citizen.id, now),
            )
        )
    ).scalar_one_or_none()
    if citizen is None:
        raise sessions.expired()
    return CitizenAuth(citizen, sid)


CurrentCitizenAuth = Annotated[CitizenAuth, Depends(get_citizen_auth)]


async def get_reading_citizen(
    session: ReadSessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: BearerDep,
) -> Citizen:
    """The resident, checked in a read session, for a route that only reads:
    on SQLite it takes no write lock (``ReadingStaff``'s counterpart)."""
    return (await get_citizen_auth(session, tokens, clock, credentials)).citizen


async def get_current_citizen(auth: CurrentCitizenAuth) -> Citizen:
    return auth.citizen


CurrentCitizen = Annotated[Citizen, Depends(get_current_citizen)]
# For a route that only reads, with ``ReadSessionDep`` (one session each).
ReadingCitizen = Annotated[Citizen, Depends(get_reading_citizen)]


async def get_optional_citizen(
    session: ReadSessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    credentials: BearerDep,
) -> Citizen | None:
    """For public pages that only use a login to pick defaults (the village)."""
    if credentials is None:
        return None
    return (await get_citizen_auth(session, tokens, clock, credentials)).citizen


OptionalCitizen = Annotated[Citizen | None, Depends(get_optional_citizen)]
