"""Sessions: the one record that decides whether a sign-in still works.

Every sign-in is a row in ``auth_sessions`` (app/models/session.py), for
residents and staff alike:

* ``api`` sessions are refresh-token families. A refresh token carries the
  session id and its generation; using it moves the row to the next
  generation (rotation), so it works once. Presenting an older one means two
  parties hold the family (a stolen copy, or a replay), and the whole family
  is revoked: the thief and the owner both sign in again, which the owner can
  and the thief cannot.
* ``console`` sessions are the staff console's browser sessions; the console
  creates, touches and revokes them here, so "revoke sessions" and disabling
  an account end browser sessions too.

Access tokens name their session (``sid``) and are checked against the row on
every request (one primary-key lookup joined to the subject's own lookup; see
``live``), so a revoked session's access tokens stop at the next request.

Functions flush, never commit: the request owns the transaction. A detected
reuse must still be committed, so ``rotate`` returns it rather than raising.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import AppError, Unauthorized
from app.core.security import SubjectKind, TokenClaims, TokenService
from app.models import AuthSession, SessionKind, SessionSubject

logger = logging.getLogger("app.auth.sessions")

# Rows past their end are deleted after this long (kept a while for the audit).
PURGE_AFTER = timedelta(days=30)


def new_session_id() -> str:
    return secrets.token_hex(16)


async def start(
    db: AsyncSession,
    *,
    subject_kind: SessionSubject,
    subject_id: int,
    kind: SessionKind,
    now: datetime,
    expires_at: datetime,
    session_id: str | None = None,
) -> AuthSession:
    """A new sign-in. The console may pass its own id (the SHA-256 of its cookie)."""
    row = AuthSession(
        id=session_id or new_session_id(),
        subject_kind=subject_kind,
        subject_id=subject_id,
        kind=kind,
        generation=0,
        created_at=now,
        last_used_at=now,
        expires_at=expires_at,
    )
    db.add(row)
    await db.flush()
    return row


def live(
    session_id: str,
    subject_kind: SessionSubject,
    subject_id: InstrumentedAttribute[int] | int,
    now: datetime,
) -> ColumnElement[bool]:
    """SQL condition: this session exists, belongs to the subject and still works.

    Put into the query that loads the subject, so checking a token costs no
    extra round trip.
    """
    return exists().where(
        AuthSession.id == session_id,
        AuthSession.subject_kind == subject_kind,
        AuthSession.subject_id == subject_id,
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > now,
    )


async def get_live(
    db: AsyncSession, session_id: str, *, now: datetime, kind: SessionKind | None = None
) -> AuthSession | None:
    """The session if it still works (for the console's cookie check)."""
    row = await db.get(AuthSession, session_id)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if kind is not None and row.kind is not kind:
        return None
    return row


async def revoke(db: AsyncSession, session_id: str, *, reason: str, now: datetime) -> bool:
    result = await db.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason[:16])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_all(
    db: AsyncSession,
    *,
    subject_kind: SessionSubject,
    subject_id: int,
    reason: str,
    now: datetime,
) -> int:
    """End every session of a subject, of every kind (api and console)."""
    result = await db.execute(
        update(AuthSession)
        .where(
            AuthSession.subject_kind == subject_kind,
            AuthSession.subject_id == subject_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .values(revoked_at=now, revoked_reason=reason[:16])
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        logger.info(
            "sessions revoked",
            extra={
                "subject_kind": subject_kind.value,
                "subject_id": subject_id,
                "reason": reason,
                "count": count,
            },
        )
    return count


async def list_live(
    db: AsyncSession, *, subject_kind: SessionSubject, subject_id: int, now: datetime
) -> Sequence[AuthSession]:
    stmt = (
        select(AuthSession)
        .where(
            AuthSession.subject_kind == subject_kind,
            AuthSession.subject_id == subject_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.last_used_at.desc())
        .limit(100)
    )
    return (await db.execute(stmt)).scalars().all()


async def purge(db: AsyncSession, *, now: datetime) -> int:
    """Delete sessions whose end passed more than PURGE_AFTER ago.

    By ``expires_at`` alone (indexed), so the worker's call is a range scan:
    a revoked session's end is at most a refresh lifetime away anyway.
    """
    result = await db.execute(delete(AuthSession).where(AuthSession.expires_at < now - PURGE_AFTER))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


def issue_pair(
    tokens: TokenService,
    row: AuthSession,
    *,
    now: datetime,
    role: str | None = None,
    unit_id: int | None = None,
) -> TokenPair:
    kind: SubjectKind = "staff" if row.subject_kind is SessionSubject.staff else "citizen"
    access, access_exp = tokens.issue(
        subject=str(row.subject_id),
        kind=kind,
        now=now,
        role=role,
        unit_id=unit_id,
        session_id=row.id,
    )
    refresh, refresh_exp = tokens.issue(
        subject=str(row.subject_id),
        kind=kind,
        now=now,
        token_type="refresh",
        session_id=row.id,
        generation=row.generation,
    )
    return TokenPair(access, access_exp, refresh, refresh_exp)


async def sign_in(
    db: AsyncSession,
    tokens: TokenService,
    *,
    subject_kind: SessionSubject,
    subject_id: int,
    now: datetime,
    role: str | None = None,
    unit_id: int | None = None,
) -> TokenPair:
    """A new api session and its first token pair."""
    row = await start(
        db,
        subject_kind=subject_kind,
        subject_id=subject_id,
        kind=SessionKind.api,
        now=now,
        expires_at=now + tokens.refresh_lifetime,
    )
    return issue_pair(tokens, row, now=now, role=role, unit_id=unit_id)


def expired() -> Unauthorized:
    """The one answer for a session that no longer works (revoked, expired,
    rotated away, or never there)."""
    return Unauthorized("登录已失效，请重新登录")


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotated session, or the error to answer (after committing a revocation)."""

    session: AuthSession | None
    error: AppError | None


async def rotate(
    db: AsyncSession,
    tokens: TokenService,
    refresh_token: str,
    *,
    subject_kind: SessionSubject,
    now: datetime,
) -> Rotation:
    """Spend a refresh token: the session moves on one generation, or, if the
    token was already spent, the whole family is revoked.

    The move is one conditional UPDATE, so of two requests racing with the
    same token exactly one wins and the other is treated as reuse.
    """
    claims: TokenClaims = tokens.decode(refresh_token, now=now, expected_type="refresh")
    if claims.kind != subject_kind.value or claims.session_id is None or claims.generation is None:
        return Rotation(None, expired())
    row = await db.get(AuthSession, claims.session_id)
    if (
        row is None
        or row.subject_kind is not subject_kind
        or row.subject_id != claims.subject_id
        or row.kind is not SessionKind.api
        or row.revoked_at is not None
        or row.expires_at <= now
    ):
        return Rotation(None, expired())
    moved = await db.execute(
        update(AuthSession)
        .where(
            AuthSession.id == row.id,
            AuthSession.generation == claims.generation,
            AuthSession.revoked_at.is_(None),
        )
        .values(
            generation=claims.generation + 1,
            last_used_at=now,
            expires_at=now + tokens.refresh_lifetime,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        await revoke(db, row.id, reason="reuse", now=now)
        logger.warning(
            "refresh token reused: session family revoked",
            extra={
                "subject_kind": subject_kind.value,
                "subject_id": row.subject_id,
                "presented_generation": claims.generation,
            },
        )
        return Rotation(None, expired())
    await db.refresh(row)
    return Rotation(row, None)


async def end(db: AsyncSession, claims: TokenClaims, *, now: datetime) -> None:
    """Sign out: the session of this access token stops working."""
    if claims.session_id is not None:
        await revoke(db, claims.session_id, reason="logout", now=now)


def require_session(claims: TokenClaims) -> str:
    """Tokens from before sessions existed carry no ``sid``: they no longer work."""
    if claims.session_id is None:
        raise expired()
    return claims.session_id
