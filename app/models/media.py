from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models._types import str_enum
from app.models.enums import MediaKind, MediaStatus


class Media(Base):
    """One stored file. Owned by its uploader; attached to at most one case."""

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

    __table_args__ = (
        CheckConstraint(
            "(owner_citizen_id IS NULL) <> (owner_staff_id IS NULL)", name="exactly_one_owner"
        ),
        Index("ix_media_status_created", "status", "created_at"),
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
