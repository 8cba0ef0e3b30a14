"""Bookkeeping for work that follows a request instead of happening inside it.

``reference_version`` holds one row whose token changes (by trigger, migration
0017) whenever reference data does, so each process can keep reference data
cached and check it with one tiny read. ``stats_pending`` is filled by a
trigger on ``complaint_events``: the events the statistics projector has not
applied yet. ``projector_marks`` records how far projection has come.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class ReferenceVersion(Base):
    __tablename__ = "reference_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class StatsPending(Base):
    """An event written but not yet applied to the rollups (one row per event)."""

    __tablename__ = "stats_pending"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    complaint_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class ProjectorMark(Base):
    """The high-water mark: the newest event applied, and how many so far."""

    __tablename__ = "projector_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    high_water: Mapped[int] = mapped_column(Integer, default=0)
    applied: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]
