"""Browser sessions: rows of the one sessions table (``app/auth/sessions.py``).

The console's session is an ``auth_sessions`` row of kind ``console`` whose
id is the SHA-256 of the random token in the cookie (a copy of the database
yields no live cookie). Being a row of that table, it ends with everything
that ends sessions: logout, an administrator's "revoke sessions", disabling
the account (also checked on every request), the idle limit
(``YDT_CONSOLE_IDLE_MINUTES``) and the absolute one
(``YDT_CONSOLE_ABSOLUTE_HOURS``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions as auth_sessions
from app.core.config import Settings
from app.models import AuthSession, SessionKind, SessionSubject, StaffUser

# last_used_at is written at most this often: idle expiry needs minutes, not
# a write on every page.
TOUCH_EVERY = timedelta(seconds=60)
MAX_TOKEN = 128


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Opened:
    token: str  # goes into the cookie, never stored
    row: AuthSession


async def open_session(
    session: AsyncSession, user: StaffUser, *, now: datetime, settings: Settings
) -> Opened:
    token = secrets.token_urlsafe(32)
    row = await auth_sessions.start(
        session,
        subject_kind=SessionSubject.staff,
        subject_id=user.id,
        kind=SessionKind.console,
        now=now,
        expires_at=now + timedelta(hours=settings.console_absolute_hours),
        session_id=digest(token),
    )
    return Opened(token, row)


async def resolve(
    session: AsyncSession, token: str, *, now: datetime, settings: Settings
) -> tuple[AuthSession, StaffUser] | None:
    """The live session and its user, or None (the row ended) when it has
    expired, was revoked, sat idle too long, or its account is disabled."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = await auth_sessions.get_live(session, digest(token), now=now, kind=SessionKind.console)
    if row is None or row.subject_kind is not SessionSubject.staff:
        return None
    if now - row.last_used_at > timedelta(minutes=settings.console_idle_minutes):
        await auth_sessions.revoke(session, row.id, reason="idle", now=now)
        return None
    user = await session.get(StaffUser, row.subject_id)
    if user is None or not user.active:
        await auth_sessions.revoke(session, row.id, reason="disabled", now=now)
        return None
    if now - row.last_used_at >= TOUCH_EVERY:
        await auth_sessions.touch(session, row, now=now)
    return row, user


async def close(session: AsyncSession, row: AuthSession, *, now: datetime) -> None:
    await auth_sessions.revoke(session, row.id, reason="logout", now=now)
