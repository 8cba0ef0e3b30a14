"""Sign-in sessions: what a refresh token, an access token or a console cookie
belongs to, so that one row decides whether they still work."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models._types import str_enum


class SessionSubject(enum.StrEnum):
    citizen = "citizen"
    staff = "staff"


class SessionKind(enum.StrEnum):
    api = "api"  # a token pair (mini-program, API clients): a refresh-token family
    console = "console"  # a staff console browser session (cookie)


class AuthSession(Base):
    """One sign-in. Revoking the row ends everything issued under it.

    For ``api`` sessions the row is the refresh-token family: ``generation``
    is the number of the one refresh token that may be used next; presenting
    an older one means a copy is in someone else's hands, and the family is
    revoked. Access tokens carry the id (``sid``) and are refused once the row
    is revoked or expired. Subjects are not foreign keys: a session belongs to
    a resident or to a staff member (``subject_kind``).
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (
        Index("ix_auth_sessions_subject", "subject_kind", "subject_id"),
        Index("ix_auth_sessions_expires_at", "expires_at"),  # the worker's purge
    )

    # 32 hex characters for api sessions; the console may use the 64-hex
    # SHA-256 of its cookie token, so a database copy yields no live cookie.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_kind: Mapped[SessionSubject] = mapped_column(
        str_enum(SessionSubject, "session_subject")
    )
    subject_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[SessionKind] = mapped_column(str_enum(SessionKind, "session_kind"))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # logout, reuse, admin, disabled, password, idle
    revoked_reason: Mapped[str | None] = mapped_column(String(16))
