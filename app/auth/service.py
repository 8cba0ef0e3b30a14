from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.auth.schemas import CitizenRead, CitizenToken
from app.core.errors import AppError
from app.core.security import TokenService
from app.models import Citizen, SessionSubject
from app.regions import service as regions_service
from app.regions.schemas import SceneRead
from app.wechat.client import Session


async def find_or_create(session: AsyncSession, identity: Session, *, now: datetime) -> Citizen:
    """By unionid when WeChat gives one (same person across our apps), else openid.

    Both are looked up by keyed blind index: neither is stored in the clear.
    """
    citizen: Citizen | None = None
    unionid = Citizen.index_unionid(identity.unionid) if identity.unionid else None
    openid = Citizen.index_openid(identity.openid)
    if unionid:
        citizen = (
            await session.execute(select(Citizen).where(Citizen.unionid_index == unionid))
        ).scalar_one_or_none()
    if citizen is None:
        citizen = (
            await session.execute(select(Citizen).where(Citizen.openid_index == openid))
        ).scalar_one_or_none()
    if citizen is None:
        citizen = Citizen(unionid_index=unionid, created_at=now, last_login_at=now)
        citizen.set_openid(identity.openid)
        try:
            async with session.begin_nested():
                session.add(citizen)
        except IntegrityError:  # the same person logging in twice at once
            citizen = (
                await session.execute(select(Citizen).where(Citizen.openid_index == openid))
            ).scalar_one()
    if unionid and citizen.unionid_index is None:
        citizen.unionid_index = unionid
    citizen.last_login_at = now
    await session.flush()
    return citizen


async def apply_scene(
    session: AsyncSession, citizen: Citizen, scene: str | None
) -> SceneRead | None:
    """A scanned QR code sets the resident's village (a later scan moves it)."""
    if not scene:
        return None
    place = await regions_service.resolve_scene(session, scene)
    citizen.region_code = place.village.code
    await session.flush()
    return place


async def issue_tokens(
    session: AsyncSession,
    tokens: TokenService,
    citizen: Citizen,
    place: SceneRead | None,
    *,
    now: datetime,
) -> CitizenToken:
    """A new session (refresh-token family) and its first token pair."""
    pair = await sessions.sign_in(
        session,
        tokens,
        subject_kind=SessionSubject.citizen,
        subject_id=citizen.id,
        now=now,
        role="citizen",
    )
    return token_response(pair, citizen, place)


def token_response(
    pair: sessions.TokenPair, citizen: Citizen, place: SceneRead | None
) -> CitizenToken:
    return CitizenToken(
        access_token=pair.access_token,
        expires_at=pair.access_expires_at,
        refresh_token=pair.refresh_token,
        refresh_expires_at=pair.refresh_expires_at,
        citizen=CitizenRead(id=citizen.id, region_code=citizen.region_code, place=place),
    )


async def refresh(
    session: AsyncSession, tokens: TokenService, refresh_token: str, *, now: datetime
) -> CitizenToken | AppError:
    """Rotate: a new pair for the refresh token, which stops working.

    Returns (rather than raises) the error, so that a family revoked for
    reuse stays revoked when the request commits.
    """
    rotation = await sessions.rotate(
        session, tokens, refresh_token, subject_kind=SessionSubject.citizen, now=now
    )
    if rotation.error is not None or rotation.session is None:
        return rotation.error or sessions.expired()
    citizen = await session.get(Citizen, rotation.session.subject_id)
    if citizen is None:
        return sessions.expired()
    pair = sessions.issue_pair(tokens, rotation.session, now=now, role="citizen")
    return token_response(pair, citizen, None)
