from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models._types import str_enum
from app.models.enums import StaffRole


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole, "staff_role"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("supervision_units.id"), index=True)
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    # For handlers: where their department sits (e.g. 通川区 for 通川区教育局).
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
