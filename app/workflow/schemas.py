from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from app.complaints.schemas import ItemBrief, UnitBrief
from app.core.schemas import DB_INT_MAX, BoundedDatetime, DbId, RequestModel
from app.disclosures.schemas import DisclosureRef
from app.models.enums import Channel, ComplaintStatus, RegionLevel
from app.workflow.machine import Card, Priority


class ActionRequest(RequestModel):
    expected_version: int = Field(ge=1, le=DB_INT_MAX)
    note: str = Field(
        default="",
        max_length=4000,
        description="internal note, seen by staff only. reject/reply/resolve without "
        "public_reply: read as the public reply (what clients before public_reply meant)",
    )
    public_reply: str | None = Field(
        default=None,
        max_length=4000,
        description="what the resident reads on the timeline and in notices; required "
        "for reject, reply and resolve (or given as note, see above), optional otherwise",
    )
    media_ids: list[str] = Field(default_factory=list, max_length=13)
    cadre_id: DbId | None = Field(default=None, description="assign: the cadre of the unit")
    department_code: str | None = Field(default=None, pattern=r"^D\d{3}$", description="transfer")
    department_region_code: str | None = Field(
        default=None, pattern=r"^\d{12}$", description="transfer"
    )
    days: int | None = Field(default=None, ge=1, le=90, description="extend: working days")
    slot: str | None = Field(default=None, max_length=32, description="sign: which signature")
    item_code: str | None = Field(
        default=None,
        pattern=r"^\d{4}$",
        description="reclassify: the item the case really is about (re-routes the case)",
    )


class Reporter(BaseModel):
    anonymous: bool
    name: str | None = None
    phone: str | None = None
    visible: bool = Field(
        description="false when this role may not see who reported, or, for an accusation, "
        "anywhere but the case file (where each read is recorded for the commission)"
    )


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
    moderation: str | None = Field(
        default=None,
        description="WeChat content security of the resident's text: null or pass; "
        "checking (WeChat unreachable at filing, the worker retries); review or risky "
        "(flagged: read with care before acting or quoting it)",
    )


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
    note: str = Field(
        description="staff actions: the internal note, never shown to the resident; "
        "residents' own steps: their text"
    )
    public_reply: str = Field(
        description="what the resident's timeline shows for this event ('' if nothing); "
        "public=false events are not on that timeline at all"
    )
    data: dict[str, Any]
    at: datetime


class CaseFile(QueueItem):
    content: str
    department_code: str
    department_region_code: str
    handler_department_code: str | None
    handler_region_code: str | None
    routing_trace: list[str]
    result: str | None
    historical: bool = Field(
        default=False,
        description="历史件补录: entered after the fact with its real dates; "
        "not in on-time figures",
    )
    signatures: list[str]
    signatures_needed: list[str]
    events: list[EventRead]
    media: list[dict[str, Any]] = Field(
        description="attached files staff may see: not those WeChat content security is "
        "still checking or found risky (``moderation`` says review when flagged)"
    )
    media_withheld: int = Field(
        default=0, description="attached files withheld: still being checked, or found risky"
    )
    disclosure: DisclosureRef | None = None


class OfflineIntake(RequestModel):
    channel: Channel
    item_code: str = Field(pattern=r"^\d{4}$")
    region_code: str = Field(pattern=r"^\d{12}$")
    content: str = Field(min_length=5, max_length=2000)
    received_at: BoundedDatetime | None = Field(
        default=None, description="when it really came in (may be in the past)"
    )
    reporter_name: str | None = Field(
        default=None, max_length=32, description="also accepted as contact_name"
    )
    reporter_phone: str | None = Field(
        default=None, max_length=20, description="also accepted as contact_phone"
    )
    anonymous: bool = False
    accused_level: RegionLevel | None = None
    priority_flags: list[Priority] = Field(default_factory=list)
    media_ids: list[str] = Field(default_factory=list, max_length=13)
    decline_query_code: bool = Field(
        default=False,
        description="true when the resident declines a query code; otherwise one is issued "
        "(shown once in the answer and on the receipt) so they can follow the case at /track",
    )

    @model_validator(mode="before")
    @classmethod
    def _filing_names(cls, data: Any) -> Any:
        """Online filing calls the reporter contact_name/contact_phone; clerks' tools
        send either spelling, so both are accepted (and must agree if both are sent)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, name in (("contact_name", "reporter_name"), ("contact_phone", "reporter_phone")):
            if alias in data:
                value = data.pop(alias)
                if data.get(name, value) != value:
                    raise ValueError(f"{alias} 与 {name} 不一致，请只填写其中一个")
                data[name] = value
        return data


class IntakeFiled(CaseFile):
    query_code: str | None = Field(
        default=None,
        description="shown once (stored hashed): with the tracking number, follows the case "
        "at GET /track/{tracking_no}; null when the resident declined",
    )
    tracking_url: str = Field(description="the public tracking page the receipt's QR code opens")


class OrderCreate(RequestModel):
    complaint_id: str = Field(min_length=32, max_length=32)
    reason: str = Field(min_length=2, max_length=2000)
    deadline_days: int | None = Field(
        default=None,
        ge=1,
        le=30,
        description="working days (like every deadline): due at the end of that working day",
    )


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


class OrderPage(BaseModel):
    items: list[OrderRead]
    next_cursor: str | None = None
