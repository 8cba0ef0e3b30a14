from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import BoundedDatetime, RequestModel
from app.models.enums import RegionLevel, Tier, UnitKind


class UnitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    kind: UnitKind
    level: RegionLevel
    region_code: str
    group_code: str | None
    parent_id: int | None
    active: bool


class UnitPage(BaseModel):
    items: list[UnitRead]
    next_cursor: str | None = None


class OverrideCreate(RequestModel):
    item_code: str = Field(pattern=r"^\d{4}$")
    region_code: str = Field(pattern=r"^\d{12}$")
    unit_code: str = Field(min_length=1, max_length=40)
    reason: str = Field(min_length=2, max_length=500)


class OverrideRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item_code: str
    region_code: str
    unit_id: int
    reason: str
    created_by: str
    created_at: datetime
    revoked_by: str | None
    revoked_at: datetime | None


class DesignationCreate(RequestModel):
    unit_code: str = Field(min_length=1, max_length=40)
    item_code: str = Field(pattern=r"^\d{4}$")
    username: str = Field(min_length=1, max_length=64)


class DesignationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    item_code: str
    staff_id: int
    created_by: str
    created_at: datetime
    revoked_by: str | None
    revoked_at: datetime | None


class RoutePreviewRequest(RequestModel):
    item_code: str = Field(pattern=r"^\d{4}$")
    region_code: str = Field(pattern=r"^\d{12}$")
    accusation: bool | None = None
    accused_level: RegionLevel | None = None
    received_at: BoundedDatetime | None = None


class RouteDecisionRead(BaseModel):
    unit: UnitRead
    department_code: str
    department_region_code: str
    cadre_id: int | None
    tier: Tier
    time_limit_days: int
    accept_due_at: datetime
    due_at: datetime
    override_id: int | None
    trace: list[str]
    warnings: list[str]


class CalendarDayRead(BaseModel):
    day: date
    is_workday: bool
    source: str
    note: str = ""


class CalendarYearRead(BaseModel):
    year: int
    known: bool = Field(description="whether the admin table or the library knows this year")
    days: list[CalendarDayRead] = Field(description="holidays and make-up working days only")


class CalendarYearImport(RequestModel):
    holidays: list[str | dict[str, str]] = Field(default_factory=list)
    workdays: list[str | dict[str, str]] = Field(default_factory=list)
