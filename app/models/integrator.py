"""Outside systems that file through the Open311 GeoReport v2 facade.

An integrator (a 12345 hotline, a municipal CRM) holds one api key issued by
an administrator. Only a hash of the key is stored: the value is shown once,
at issue. A revoked key stays as a row, so the filings it made keep naming
their actor.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class IntegratorKey(Base):
    __tablename__ = "integrator_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    contact: Mapped[str] = mapped_column(String(120), default="")
    # The first characters of the key, shown in lists so an admin can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(12))
    # sha256 of the whole key: keys are 256-bit random, so no salt or slow hash is needed.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    requests_per_hour: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))


class Open311Token(Base):
    """The GeoReport token of a filing (``GET tokens/{token}``): an opaque handle
    the integrator can trade for the service request id."""

    __tablename__ = "open311_tokens"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"))
    integrator_key_id: Mapped[int] = mapped_column(ForeignKey("integrator_keys.id"))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_open311_tokens_complaint", "complaint_id"),)
