"""Administrator-maintained routing data: overrides, designated cadres, calendar.

Rows are never updated in place except to revoke them, so the tables are the
history of who changed what.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class RoutingOverride(Base):
    __tablename__ = "routing_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(8))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("supervision_units.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_routing_overrides_item_region", "item_code", "region_code"),)


class DesignatedCadre(Base):
    """The cadre a unit designates for one item (事项责任人)."""

    __tablename__ = "designated_cadres"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("supervision_units.id"))
    item_code: Mapped[str] = mapped_column(String(8))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_designated_cadres_unit_item", "unit_id", "item_code"),)


class CalendarDay(Base):
    """A day whose working status an administrator fixed (State Council schedule)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(32), default="admin")
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
