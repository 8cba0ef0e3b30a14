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

from sqlalchemy import update
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


@dataclass(frozen=True, slots=True)
class Resolved:
    """A console session as read, and what its request must write about it:
    its end (``ending``: the reason, when it just ran out) or its mark of
    use (``touch``), at most once a minute."""

    row: AuthSession
    user: StaffUser | None
    ending: str | None = None
    touch: bool = False

    @property
    def live(self) -> bool:
        return self.ending is None and self.user is not None


async def look_up(
    session: AsyncSession, token: str, *, now: datetime, settings: Settings
) -> Resolved | None:
    """The session of ``token`` and what must be written about it, reading
    only (a read session may ask): None when there is no live row."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = await auth_sessions.get_live(session, digest(token), now=now, kind=SessionKind.console)
    if row is None or row.subject_kind is not SessionSubject.staff:
        return None
    if now - row.last_used_at > timedelta(minutes=settings.console_idle_minutes):
        return Resolved(row, None, ending="idle")
    user = await session.get(StaffUser, row.subject_id)
    if user is None or not user.active:
        return Resolved(row, None, ending="disabled")
    return Resolved(row, user, touch=now - row.last_used_at >= TOUCH_EVERY)


def needs_write(found: Resolved) -> bool:
    return found.ending is not None or found.touch


async def settle(session: AsyncSession, found: Resolved, *, now: datetime) -> None:
    """Write what ``look_up`` found due: end the session, or mark its use."""
    if found.ending is not None:
        await auth_sessions.revoke(session, found.row.id, reason=found.ending, now=now)
    elif found.touch:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == found.row.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )


async def resolve(
    session: AsyncSession, token: str, *, now: datetime, settings: Settings
) -> tuple[AuthSession, StaffUser] | None:
    """The live session and its user, or None (the row ended) when it has
    expired, was revoked, sat idle too long, or its account is disabled;
    in a writer session, which writes what is due."""
    found = await look_up(session, token, now=now, settings=settings)
    if found is None:
        return None
    await settle(session, found, now=now)
    return (found.row, found.user) if found.live and found.user is not None else None


async def close(session: AsyncSession, row: AuthSession, *, now: datetime) -> None:
    await auth_sessions.revoke(session, row.id, reason="logout", now=now)
