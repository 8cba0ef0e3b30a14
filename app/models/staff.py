from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
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
    created_at: Mapped[datetime]


class LoginOutcome(enum.StrEnum):
    success = "success"
    bad_password = "bad_password"
    unknown_user = "unknown_user"
    disabled = "disabled"
    throttled = "throttled"


class StaffLoginAttempt(Base):
    """The audit of staff sign-ins, so an admin can read an account's recent
    failures, and the record of which IPs an account signed in from (a
    correct password from a known IP passes the per-username throttle).

    The typed username is kept only when it names an account: a password
    typed into the username field must not land in a table.
    """

    __tablename__ = "staff_login_attempts"
    __table_args__ = (
        Index("ix_staff_login_attempts_staff_at", "staff_id", "at"),
        Index("ix_staff_login_attempts_staff_ip", "staff_id", "ip"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    ip: Mapped[str] = mapped_column(String(45))
    outcome: Mapped[LoginOutcome] = mapped_column(str_enum(LoginOutcome, "login_outcome"))
