"""The resident's verdict (rating) and staff callbacks (回访)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class Rating(Base):
    """One verdict per handling round (a reopened case may be rated again)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    # NULL on a protected case (accusation, anonymous): the rater is the case's
    # sealed filer, and no row may tie the case to the citizen.
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    score: Mapped[int] = mapped_column(Integer)
    satisfaction: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("complaint_id", "round"),
        CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
        CheckConstraint(
            "satisfaction IN ('satisfied', 'basic', 'unsatisfied')", name="satisfaction_values"
        ),
    )


class CallbackDraw(Base):
    """A quarter's sample; the seed makes the draw reproducible."""

    __tablename__ = "callback_draws"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quarter: Mapped[str] = mapped_column(String(8))
    scope_region: Mapped[str] = mapped_column(String(12))
    seed: Mapped[str] = mapped_column(String(64))
    fraction: Mapped[float] = mapped_column(Float)
    population: Mapped[int] = mapped_column(Integer)
    drawn: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime]


class Callback(Base):
    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("callback_draws.id"), index=True)
    # Never drawn twice: one callback per case, ever.
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("supervision_units.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    method: Mapped[str | None] = mapped_column(String(16))
    reached: Mapped[bool | None] = mapped_column(Boolean)
    resolved: Mapped[bool | None] = mapped_column(Boolean)
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    fake_closure: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    done_at: Mapped[datetime | None]
