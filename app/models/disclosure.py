"""Village-affairs disclosures (村务公开) and their audited, hash-chained history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models._types import str_enum
from app.models.enums import DisclosureCategory, DisclosureStatus, PeriodKind


class Disclosure(Base):
    """One version of a disclosure. A correction is a new row in the same
    series; publishing it marks the previous version superseded, never deleted.

    Money is kept as integer fen in columns and as decimal strings in ``rows``:
    SQLite has no decimal type, and floats are not money.
    """

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int | None] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    category: Mapped[DisclosureCategory] = mapped_column(
        str_enum(DisclosureCategory, "disclosure_category")
    )
    period_kind: Mapped[PeriodKind] = mapped_column(str_enum(PeriodKind, "period_kind"))
    period: Mapped[str] = mapped_column(String(7))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Media ids shown with this version; the media rows belong to the series,
    # so a correction can keep the scanned vouchers without copying them.
    attachment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    opening_fen: Mapped[int | None] = mapped_column(BigInteger)
    closing_fen: Mapped[int | None] = mapped_column(BigInteger)
    income_fen: Mapped[int | None] = mapped_column(BigInteger)
    expense_fen: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[DisclosureStatus] = mapped_column(
        str_enum(DisclosureStatus, "disclosure_status")
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    last_editor_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    published_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("disclosures.id"))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("disclosures.id"))
    correction_reason: Mapped[str | None] = mapped_column(Text)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    lock_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("series_id", "version"),
        Index("ix_disclosures_region_status", "region_code", "status", "category", "period"),
    )


class DisclosureEvent(Base):
    """Append-only: each row carries its predecessor's hash within the series."""

    __tablename__ = "disclosure_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    disclosure_id: Mapped[int] = mapped_column(ForeignKey("disclosures.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Chain format (app/core/chain.py): rows written before keyed links are 1.
    hash_version: Mapped[int] = mapped_column(Integer, server_default="1")

    __table_args__ = (UniqueConstraint("series_id", "seq"),)
