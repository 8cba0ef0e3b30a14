from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models._types import str_enum
from app.models.enums import MediaKind, MediaStatus


class DeriveState(enum.StrEnum):
    """The worker's playable copy / poster frame (app/media/maintenance.py)."""

    pending = "pending"  # the original does not play everywhere: a copy is due
    done = "done"
    failed = "failed"  # gave up after YDT_MEDIA_DERIVE_ATTEMPTS; the original stays


class Media(Base):
    """One stored file. Owned by its uploader; attached to at most one case.

    ``sha256`` is the evidence: the hash of the bytes at ``storage_key``, a key
    only the server ever writes (a direct upload lands at ``upload_key``, a
    one-time key, and is copied after it is checked). ``etag`` is the
    backend's version tag of that object when its sha256 was last verified.
    """

    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    owner_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    kind: Mapped[MediaKind] = mapped_column(str_enum(MediaKind, "media_kind"))
    status: Mapped[MediaStatus] = mapped_column(str_enum(MediaStatus, "media_status"))
    content_type: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    max_size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    direct: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    ready_at: Mapped[datetime | None]
    attached_at: Mapped[datetime | None]
    # What it is attached to, e.g. "complaint:<id>" or "event:<id>".
    attached_to: Mapped[str | None] = mapped_column(String(80), index=True)
    upload_key: Mapped[str | None] = mapped_column(String(200))
    etag: Mapped[str | None] = mapped_column(String(128))
    # Found by decoding (voice, video): app/media/probe.py.
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(32))
    audio_codec: Mapped[str | None] = mapped_column(String(32))
    # {"play": {...}, "poster": {...}}, each {key, content_type, size, sha256, etag}.
    derivatives: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    derive_state: Mapped[DeriveState | None] = mapped_column(
        str_enum(DeriveState, "media_derive_state")
    )
    derive_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    derive_after: Mapped[datetime | None]
    # Last full sha256 check (the worker checks every newly attached file);
    # when a check found the stored bytes differ from sha256 (never cleared).
    verified_at: Mapped[datetime | None]
    integrity_failed_at: Mapped[datetime | None]
    # WeChat content security of a resident's upload (app/moderation/): NULL
    # when not checked (staff uploads, content security off, rows before 0015),
    # else checking / pass / review / risky. Staff see it only once pass or review.
    moderation: Mapped[str | None] = mapped_column(String(16))
    moderation_label: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        # One owner, or none once attached: a resident's upload on a protected
        # case forgets its uploader when attached (app/media/service.attach).
        CheckConstraint(
            "(owner_citizen_id IS NULL OR owner_staff_id IS NULL) AND "
            "(owner_citizen_id IS NOT NULL OR owner_staff_id IS NOT NULL "
            "OR attached_to IS NOT NULL)",
            name="one_owner",
        ),
        Index("ix_media_status_created", "status", "created_at"),
        Index("ix_media_derive_state", "derive_state"),
        Index("ix_media_status_verified", "status", "verified_at"),
    )


class IdempotencyRecord(Base):
    """The first answer to a request sent with an Idempotency-Key.

    Written in the same transaction as the work it protects, so a retry sees
    either nothing (and does the work) or the committed first result.
    """

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    owner: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_idempotency_scope_owner_key", "scope", "owner", "key", unique=True),
        Index("ix_idempotency_created", "created_at"),
    )
