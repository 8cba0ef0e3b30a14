"""A complaint and its append-only, hash-chained event log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models._types import str_enum
from app.models.enums import Channel, ComplaintStatus, RegionLevel, Tier


def _sparse(name: str, first: str, *rest: str) -> Index:
    """An index on a column most cases leave NULL, holding only the rows that
    have it: an equality lookup on the column implies it is not NULL, so both
    databases use it as before."""
    where = text(f"{first} IS NOT NULL")
    return Index(name, first, *rest, postgresql_where=where, sqlite_where=where)


class Complaint(Base):
    __tablename__ = "complaints"

    # Unguessable: residents' URLs must not be enumerable.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tracking_no: Mapped[str] = mapped_column(String(24), unique=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "complaint_channel"))
    # The filer. On a protected case (accusation or anonymous, see
    # identity_protected) this and the contact columns stay NULL: who filed is
    # in identity_sealed only, found again through the blind indexes
    # (app/complaints/identity.py).
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    item_code: Mapped[str] = mapped_column(String(8))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    township_code: Mapped[str] = mapped_column(String(12))
    county_code: Mapped[str] = mapped_column(String(12))
    content: Mapped[str] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(Boolean)
    contact_name: Mapped[str | None] = mapped_column(String(32))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    query_code_hash: Mapped[str | None] = mapped_column(String(64))
    location_lat: Mapped[float | None] = mapped_column(Float)
    location_lng: Mapped[float | None] = mapped_column(Float)
    location_address: Mapped[str | None] = mapped_column(String(200))
    accusation: Mapped[bool] = mapped_column(Boolean, default=False)
    accused_level: Mapped[RegionLevel | None] = mapped_column(
        str_enum(RegionLevel, "accused_level")
    )
    status: Mapped[ComplaintStatus] = mapped_column(str_enum(ComplaintStatus, "complaint_status"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    unit_id: Mapped[int] = mapped_column(ForeignKey("supervision_units.id"))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    department_region_code: Mapped[str] = mapped_column(String(12))
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    tier: Mapped[Tier] = mapped_column(str_enum(Tier, "complaint_tier"))
    time_limit_days: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime]
    accept_due_at: Mapped[datetime]
    due_at: Mapped[datetime]
    routing_trace: Mapped[list[str]] = mapped_column(JSON)
    # Workflow state (issue 5). Card moments are derived from received/due and
    # stored so queues can filter in SQL; the card itself is read off the clock.
    filed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    handler_department_code: Mapped[str | None] = mapped_column(String(8))
    handler_region_code: Mapped[str | None] = mapped_column(String(12))
    yellow_at: Mapped[datetime]
    orange_at: Mapped[datetime]
    priority: Mapped[int] = mapped_column(Integer, default=0)
    priority_flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    reporter_name: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # Where this case is counted in stats_open_due (unit and local due day), or
    # NULL once it is no longer open: the rollup moves it when any of the three
    # changes, whatever path changed them.
    open_unit_id: Mapped[int | None] = mapped_column(Integer)
    # "Ask about this line" (村务公开): the disclosure version and 1-based row asked about.
    disclosure_id: Mapped[int | None] = mapped_column(ForeignKey("disclosures.id"))
    disclosure_row: Mapped[int | None] = mapped_column(Integer)
    open_due_day: Mapped[date | None] = mapped_column(Date)
    # Identity at rest (issue 13). identity_sealed: the filer's citizen id,
    # openid, name and phone, envelope-encrypted (app/core/crypto.py), on
    # protected cases only. owner_index / phone_index: keyed blind indexes of
    # the citizen and the phone, on protected cases only (never beside the plain
    # value, or a dump could pair them). identity_commitment: keyed commitment
    # to the contact fields, on every case, also carried by the filing event.
    identity_sealed: Mapped[str | None] = mapped_column(Text)
    owner_index: Mapped[str | None] = mapped_column(String(64))
    phone_index: Mapped[str | None] = mapped_column(String(64))
    identity_commitment: Mapped[str | None] = mapped_column(String(64))
    # The resident's text (content, supplements, comments) as WeChat content
    # security judged it so far: NULL/pass, checking (WeChat was unreachable;
    # the worker retries), review or risky (flagged for staff).
    moderation: Mapped[str | None] = mapped_column(String(16))
    # 历史件补录 (issue 15): entered after the fact with its real dates and
    # outcome; its deadline was never watched here, so no on-time figure counts it.
    historical: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    imported_at: Mapped[datetime | None]

    @property
    def identity_protected(self) -> bool:
        """Whose identity no dump, hash or department may reveal: accusers and
        anonymous filers."""
        return bool(self.anonymous or self.accusation)

    __table_args__ = (
        # Lookups by a column most cases leave NULL: partial, so a new case
        # writes no entry there (migration 0022).
        _sparse("ix_complaints_citizen_created", "citizen_id", "created_at"),
        _sparse("ix_complaints_owner_created", "owner_index", "created_at"),
        _sparse("ix_complaints_phone_index", "phone_index"),
        Index("ix_complaints_unit_status_due", "unit_id", "status", "due_at"),
        Index("ix_complaints_cadre_status", "cadre_id", "status"),
        Index("ix_complaints_region", "region_code"),
        _sparse("ix_complaints_handler", "handler_department_code", "handler_region_code"),
        _sparse("ix_complaints_filed_by", "filed_by_staff_id"),
        Index("ix_complaints_status_due", "status", "due_at"),
        # The class-case alert's first cases of a cluster, in its order (id breaks ties).
        Index(
            "ix_complaints_item_town_received", "item_code", "township_code", "received_at", "id"
        ),
    )


# The queue's order is (card, priority desc, due, id). Each card is one range of
# open cases by due time, so these two partial indexes let every card bucket be
# read in order and resumed from a keyset cursor, touching only one page. The
# predicates are literal SQL so PostgreSQL and SQLite can match them to queries.
OPEN_SQL = "status NOT IN ('closed', 'rejected')"
DONE_SQL = "status IN ('closed', 'rejected')"
Index(
    "ix_complaints_queue_open",
    -Complaint.priority,
    Complaint.due_at,
    Complaint.id,
    postgresql_where=text(OPEN_SQL),
    sqlite_where=text(OPEN_SQL),
)
Index(
    "ix_complaints_queue_done",
    -Complaint.priority,
    Complaint.due_at,
    Complaint.id,
    postgresql_where=text(DONE_SQL),
    sqlite_where=text(DONE_SQL),
)


class ComplaintEvent(Base):
    """Append-only. Each row stores its predecessor's hash and its own, per case,
    so any edit or deletion breaks the chain (``ydt audit verify``)."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    public: Mapped[bool] = mapped_column(Boolean)
    actor_kind: Mapped[str] = mapped_column(String(16))
    # NULL for a resident acting on a protected case; actor_commitment binds it.
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_commitment: Mapped[str | None] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Chain format (app/core/chain.py): rows written before keyed links are 1.
    hash_version: Mapped[int] = mapped_column(Integer, server_default="1")

    __table_args__ = (UniqueConstraint("complaint_id", "seq"),)


TOLD_SQL = "kind IN ('accepted', 'closed') AND status = 'sent'"


class Notification(Base):
    """Transactional outbox: written with the change, delivered by the worker."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    # NULL for the resident of a protected case: delivery finds the openid in
    # the case's sealed identity, so no row ties the case to the citizen.
    recipient_id: Mapped[int | None] = mapped_column(Integer)
    complaint_id: Mapped[str | None] = mapped_column(ForeignKey("complaints.id"))
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    # The pieces a WeChat template's fields are filled from, by slot name
    # (app/notifications/templates.py); NULL on rows written before it existed.
    data: Mapped[dict[str, str] | None] = mapped_column(JSON)
    channel: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    # A worker's lease on the row, so several workers never send it twice.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_recipient", "recipient_kind", "recipient_id", "created_at"),
        # 两个当天 recounts a case from its delivered acceptance and closure
        # notices (app/stats/same_day.py); partial, so a filing's own notice
        # adds no entry. Literal SQL so both databases match it to the query.
        Index(
            "ix_notifications_told",
            "complaint_id",
            postgresql_where=text(TOLD_SQL),
            sqlite_where=text(TOLD_SQL),
        ),
    )


class TrackingCounter(Base):
    __tablename__ = "tracking_counters"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class SupervisionOrder(Base):
    """督办单: a written order to speed up a late case.

    Automatic orders are raised once per case per overdue spell: the spell is
    identified by the due date that was missed, so an extension starts a new one.
    """

    __tablename__ = "supervision_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("supervision_units.id"))
    kind: Mapped[str] = mapped_column(String(16))  # manual | automatic
    spell_due_at: Mapped[datetime | None]
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    reason: Mapped[str] = mapped_column(Text)
    deadline_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("complaint_id", "kind", "spell_due_at"),)
