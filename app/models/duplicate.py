"""Duplicate handling: residents following a case, and cases merged into another."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class ComplaintFollow(Base):
    """A resident who chose to follow (关注) someone else's open case instead of
    filing it again. Only cases shown to other residents can be followed, and
    those are never protected, so the plain citizen id reveals no accuser."""

    __tablename__ = "complaint_follows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("complaint_id", "citizen_id", name="uq_complaint_follows_case_citizen"),
        Index("ix_complaint_follows_citizen", "citizen_id"),
    )


class ComplaintMerge(Base):
    """A child case closed as a duplicate of its parent; the row exists while the
    merge holds (unmerging deletes it, the events keep the history). The child's
    complainant is reached through the child itself (its sealed identity on a
    protected case), so no row here names a resident."""

    __tablename__ = "complaint_merges"

    child_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), primary_key=True)
    parent_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"))
    merged_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    merged_at: Mapped[datetime]
    # The child's status when merged, restored on unmerge only as a note.
    child_status: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_complaint_merges_parent", "parent_id"),)
