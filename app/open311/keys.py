"""Integrator api keys: issued by an administrator, shown once, stored hashed,
revocable, each with its own hourly filing limit."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Forbidden, NotFound
from app.models import IntegratorKey, StaffUser
from app.open311 import repository
from app.open311.schemas import IntegratorCreate, IntegratorIssued, IntegratorRead

KEY_PREFIX = "o311_"
PREFIX_SHOWN = 12
MAX_KEY_LENGTH = 128


class IntegratorNotFound(NotFound):
    code = "integrator_not_found"


class InvalidApiKey(Forbidden):
    code = "invalid_api_key"


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def read(key: IntegratorKey) -> IntegratorRead:
    return IntegratorRead(
        id=key.id,
        name=key.name,
        contact=key.contact,
        prefix=key.prefix,
        requests_per_hour=key.requests_per_hour,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def issue(
    session: AsyncSession,
    *,
    body: IntegratorCreate,
    by: StaffUser,
    settings: Settings,
    now: datetime,
) -> IntegratorIssued:
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    key = IntegratorKey(
        name=body.name.strip(),
        contact=body.contact.strip(),
        prefix=api_key[:PREFIX_SHOWN],
        key_hash=hash_key(api_key),
        requests_per_hour=body.requests_per_hour or settings.open311_requests_per_hour,
        created_by=by.id,
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return IntegratorIssued(**read(key).model_dump(), api_key=api_key)


async def listing(session: AsyncSession, *, limit: int, offset: int) -> list[IntegratorRead]:
    return [read(k) for k in await repository.keys(session, limit=limit, offset=offset)]


async def revoke(
    session: AsyncSession, integrator_id: int, *, by: StaffUser, now: datetime
) -> IntegratorRead:
    """Revoking twice is harmless: the first moment and revoker are kept."""
    key = await session.get(IntegratorKey, integrator_id)
    if key is None:
        raise IntegratorNotFound("未找到该接入方")
    if key.revoked_at is None:
        key.revoked_at, key.revoked_by = now, by.id
        await session.flush()
    return read(key)


async def authenticate(
    session: AsyncSession, api_key: str | None, *, now: datetime
) -> IntegratorKey:
    """The live key presented, or 403 (missing, unknown and revoked read the same)."""
    if not api_key or len(api_key) > MAX_KEY_LENGTH or not api_key.startswith(KEY_PREFIX):
        raise InvalidApiKey("api_key 无效或已吊销")
    key = await repository.key_by_hash(session, hash_key(api_key))
    if key is None or key.revoked_at is not None:
        raise InvalidApiKey("api_key 无效或已吊销")
    key.last_used_at = now
    return key
