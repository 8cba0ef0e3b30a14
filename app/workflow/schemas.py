from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.complaints.schemas import ItemBrief, UnitBrief
from app.disclosures.schemas import DisclosureRef
from app.models.enums import Channel, ComplaintStatus
from app.workflow.machine import Card, Priority


class ActionRequest(BaseModel):
    expected_version: int = Field(ge=1)
    note: str = Field(default="", max_length=4000)
    media_ids: list[str] = Field(default_factory=list, max_length=13)
    cadre_id: int | None = Field(default=None, description="assign: the cadre of the unit")
    department_code: str | None = Field(default=None, pattern=r"^D\d{3}$", description="transfer")
    department_region_code: str | None = Field(
        default=None, pattern=r"^\d{12}$", description="transfer"
    )
    days: int | None = Field(default=None, ge=1, le=90, description="extend: working days")
    slot: str | None = Field(default=None, max_length=32, description="sign: which signature")


class Reporter(BaseModel):
    anonymous: bool
    name: str | None = None
    phone: str | None = None
    visible: bool = Field(description="false when this role may not see who reported")


class QueueItem(BaseModel):
    id: str
    tracking_no: str
    status: ComplaintStatus
    status_label: str
    card: Card
    priority: int
    priority_flags: list[str]
    channel: Channel
    item: ItemBrief
    region_name: str
    unit: UnitBrief
    cadre_id: int | None
    accusation: bool
    received_at: datetime
    accept_due_at: datetime
    due_at: datetime
    version: int
    reporter: Reporter


class QueuePage(BaseModel):
    items: list[QueueItem]
    next_cursor: str | None = None


class EventRead(BaseModel):
    seq: int
    kind: str
    label: str
    public: bool
    actor_kind: str
    actor_id: int | None
    from_status: str | None
    to_status: str | None
    note: str
    data: dict[str, Any]
    at: datetime
    hash: str


class CaseFile(QueueItem):
    content: str
    department_code: str
    department_region_code: str
    handler_department_code: str | None
    handler_region_code: str | None
    routing_trace: list[str]
    result: str | None
    signatures: list[str]
    signatures_needed: list[str]
    events: list[EventRead]
    media: list[dict[str, Any]]
    disclosure: DisclosureRef | None = None


class OfflineIntake(BaseModel):
    channel: Channel
    item_code: str = Field(pattern=r"^\d{4}$")
    region_code: str = Field(pattern=r"^\d{12}$")
    content: str = Field(min_length=5, max_length=2000)
    received_at: datetime | None = Field(
        default=None, description="when it really came in (may be in the past)"
    )
    reporter_name: str | None = Field(default=None, max_length=32)
    reporter_phone: str | None = Field(default=None, max_length=20)
    anonymous: bool = False
    accused_level: str | None = None
    priority_flags: list[Priority] = Field(default_factory=list)
    media_ids: list[str] = Field(default_factory=list, max_length=13)


class OrderCreate(BaseModel):
    complaint_id: str = Field(min_length=32, max_length=32)
    reason: str = Field(min_length=2, max_length=2000)
    deadline_days: int | None = Field(default=None, ge=1, le=30)


class OrderRead(BaseModel):
    id: int
    complaint_id: str
    unit_id: int
    kind: str
    reason: str
    issued_by: int | None
    spell_due_at: datetime | None
    deadline_at: datetime | None
    created_at: datetime
