from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field, field_validator, model_validator

from app.core.schemas import DbId, RequestModel
from app.disclosures.schemas import DisclosureRef
from app.models.enums import ComplaintStatus, MediaKind, RegionLevel

PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
CONTENT_MIN, CONTENT_MAX = 5, 2000


class Location(RequestModel):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=200)


class ComplaintCreate(RequestModel):
    item_code: str | None = Field(
        default=None,
        pattern=r"^\d{4}$",
        description="may be left out when asking about a disclosure",
    )
    region_code: str | None = Field(
        default=None,
        pattern=r"^\d{12}$",
        description="may be left out when asking about a disclosure",
    )
    content: str = Field(max_length=CONTENT_MAX * 2)
    media_ids: list[str] = Field(default_factory=list, max_length=13)
    anonymous: bool = False
    contact_name: str | None = Field(default=None, max_length=32)
    contact_phone: str | None = Field(default=None, max_length=20)
    location: Location | None = None
    accused_level: RegionLevel | None = Field(
        default=None, description="for accusations: the level of the official accused"
    )
    disclosure_id: DbId | None = Field(
        default=None, description="'ask about this line': the disclosure read (村务公开)"
    )
    disclosure_row: int | None = Field(
        default=None, ge=1, le=2000, description="the 1-based row asked about"
    )

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        value = value.strip()
        if len(value) < CONTENT_MIN:
            raise ValueError(f"请把问题说清楚一些（至少 {CONTENT_MIN} 个字）")
        if len(value) > CONTENT_MAX:
            raise ValueError(f"内容不能超过 {CONTENT_MAX} 字，可分次补充")
        return value

    @field_validator("contact_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.replace(" ", "").strip()
        if not PHONE_RE.fullmatch(value):
            raise ValueError("联系电话格式不正确（手机号 11 位，或带区号的座机）")
        return value

    @field_validator("media_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("附件重复")
        return value

    @model_validator(mode="after")
    def _what_and_where(self) -> ComplaintCreate:
        if self.disclosure_id is None:
            if self.disclosure_row is not None:
                raise ValueError("指明公开的行时须同时给出 disclosure_id")
            if self.item_code is None or self.region_code is None:
                raise ValueError("请选择反映的事项和所在村（社区）")
        return self

    @model_validator(mode="after")
    def _identity(self) -> ComplaintCreate:
        if self.anonymous and (self.contact_name or self.contact_phone):
            raise ValueError("匿名反映不能填写姓名或电话；如需回复请选择实名反映")
        if not self.anonymous and not self.contact_phone:
            raise ValueError("实名反映请填写联系电话，以便当天告知受理和办结情况")
        return self


class UnitBrief(BaseModel):
    id: int
    code: str
    name: str


class ItemBrief(BaseModel):
    code: str
    name: str


class ComplaintFiled(BaseModel):
    id: str
    tracking_no: str
    status: ComplaintStatus
    status_label: str
    accept_due_at: datetime
    due_at: datetime
    unit: UnitBrief
    item: ItemBrief
    region_name: str
    created_at: datetime
    query_code: str | None = Field(default=None, description="anonymous filings only, shown once")


class TimelineEntry(BaseModel):
    kind: str
    label: str
    at: datetime
    status: ComplaintStatus | None = None
    note: str = ""


class MediaLink(BaseModel):
    id: str
    kind: MediaKind
    content_type: str
    url: str | None  # the original as uploaded (withheld if it no longer matches its sha256)
    play_url: str | None = None  # what plays in the mini-program/browser (see MediaRead)
    poster_url: str | None = None  # video: first frame as JPEG
    moderation: str | None = Field(
        default=None,
        description="WeChat content security: null, checking, pass, review or risky (withheld)",
    )
    moderation_note: str | None = None  # what the resident is told about the check


class ComplaintSummary(BaseModel):
    id: str
    tracking_no: str
    status: ComplaintStatus
    status_label: str
    item: ItemBrief
    region_name: str
    unit_name: str
    created_at: datetime
    due_at: datetime


class ComplaintDetail(ComplaintSummary):
    content: str
    disclosure: DisclosureRef | None = None
    anonymous: bool
    contact_name: str | None
    contact_phone: str | None
    accept_due_at: datetime
    timeline: list[TimelineEntry]
    media: list[MediaLink]


class ComplaintPage(BaseModel):
    items: list[ComplaintSummary]
    next_cursor: str | None = None


class SupplementCreate(RequestModel):
    content: str = Field(max_length=CONTENT_MAX * 2)
    media_ids: list[str] = Field(default_factory=list, max_length=13)

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        value = value.strip()
        if not 2 <= len(value) <= CONTENT_MAX:
            raise ValueError(f"补充内容须为 2–{CONTENT_MAX} 字")
        return value
