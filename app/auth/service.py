from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.schemas import CitizenRead, CitizenToken
from app.core.security import TokenService
from app.models import Citizen
from app.regions import service as regions_service
from app.regions.schemas import SceneRead
from app.wechat.client import Session


async def find_or_create(session: AsyncSession, identity: Session, *, now: datetime) -> Citizen:
    """By unionid when WeChat gives one (same person across our apps), else openid."""
    citizen: Citizen | None = None
    if identity.unionid:
        citizen = (
            await session.execute(select(Citizen).where(Citizen.unionid == identity.unionid))
        ).scalar_one_or_none()
    if citizen is None:
        citizen = (
            await session.execute(select(Citizen).where(Citizen.openid == identity.openid))
        ).scalar_one_or_none()
    if citizen is None:
        citizen = Citizen(
            openid=identity.openid, unionid=identity.unionid, created_at=now, last_login_at=now
        )
        try:
            async with session.begin_nested():
                session.add(citizen)
        except IntegrityError:  # the same person logging in twice at once
            citizen = (
                await session.execute(select(Citizen).where(Citizen.openid == identity.openid))
            ).scalar_one()
    if identity.unionid and citizen.unionid is None:
        citizen.unionid = identity.unionid
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


def issue_tokens(
    tokens: TokenService, citizen: Citizen, place: SceneRead | None, *, now: datetime
) -> CitizenToken:
    access, access_exp = tokens.issue(
        subject=str(citizen.id), kind="citizen", now=now, role="citizen"
    )
    refresh, refresh_exp = tokens.issue(
        subject=str(citizen.id), kind="citizen", now=now, token_type="refresh"
    )
    return CitizenToken(
        access_token=access,
        expires_at=access_exp,
        refresh_token=refresh,
        refresh_expires_at=refresh_exp,
        citizen=CitizenRead(id=citizen.id, region_code=citizen.region_code, place=place),
    )
