from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.schemas import DB_INT_MAX, RequestModel
from app.models.enums import DisclosureCategory, DisclosureStatus, PeriodKind

PERIOD_PATTERNS = {
    PeriodKind.month: re.compile(r"^20\d\d-(0[1-9]|1[0-2])$"),
    PeriodKind.quarter: re.compile(r"^20\d\d-Q[1-4]$"),
    PeriodKind.year: re.compile(r"^20\d\d$"),
}
Money = Decimal


class DisclosureFields(RequestModel):
    """What a clerk writes; rows are checked per category by app.disclosures.rows."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    title: str = Field(min_length=2, max_length=100)
    body: str = Field(default="", max_length=20_000)
    period_kind: PeriodKind
    period: str = Field(description="2026-10, 2026-Q3 or 2026, matching period_kind")
    rows: list[dict[str, Any]] = Field(default_factory=list, max_length=2000)
    opening_balance: Money | None = Field(default=None, max_digits=14, decimal_places=2)
    closing_balance: Money | None = Field(default=None, max_digits=14, decimal_places=2)
    media_ids: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _period(self) -> DisclosureFields:
        if not PERIOD_PATTERNS[self.period_kind].fullmatch(self.period):
            examples = {"month": "2026-10", "quarter": "2026-Q3", "year": "2026"}
            raise ValueError(f"公开期间格式应为 {examples[self.period_kind.value]}")
        return self


class DisclosureCreate(DisclosureFields):
    region_code: str = Field(pattern=r"^\d{12}$")
    category: DisclosureCategory


class DisclosurePatch(RequestModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    expected_version: int = Field(ge=1, le=DB_INT_MAX)
    title: str | None = Field(default=None, min_length=2, max_length=100)
    body: str | None = Field(default=None, max_length=20_000)
    period_kind: PeriodKind | None = None
    period: str | None = None
    rows: list[dict[str, Any]] | None = Field(default=None, max_length=2000)
    opening_balance: Money | None = Field(default=None, max_digits=14, decimal_places=2)
    closing_balance: Money | None = Field(default=None, max_digits=14, decimal_places=2)
    media_ids: list[str] | None = Field(default=None, max_length=20)


class Withdraw(RequestModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    expected_version: int = Field(ge=1, le=DB_INT_MAX)
    reason: str = Field(min_length=4, max_length=500)


class Publish(RequestModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    expected_version: int = Field(ge=1, le=DB_INT_MAX)
    note: str = Field(default="", max_length=500, description="the committee's review opinion")


class Correct(RequestModel):
    """Opens a correction draft: the new version starts as a copy, changed here."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    expected_version: int | None = Field(
        default=None,
        ge=1,
        le=DB_INT_MAX,
        description="optional here (required by PATCH, publish, withdraw): the published "
        "version's lock_version as read; a different one is a 409",
    )
    reason: str = Field(min_length=4, max_length=500)
    title: str | None = Field(default=None, min_length=2, max_length=100)
    body: str | None = Field(default=None, max_length=20_000)
    rows: list[dict[str, Any]] | None = Field(default=None, max_length=2000)
    opening_balance: Money | None = Field(default=None, max_digits=14, decimal_places=2)
    closing_balance: Money | None = Field(default=None, max_digits=14, decimal_places=2)


class QuestionItem(BaseModel):
    code: str
    name: str


class Attachment(BaseModel):
    id: str
    kind: str
    content_type: str
    size: int
    url: str


class VersionBrief(BaseModel):
    id: int
    version: int
    status: DisclosureStatus
    published_at: datetime | None
    correction_reason: str | None


class Totals(BaseModel):
    opening_balance: str | None
    income: str | None
    expense: str | None
    closing_balance: str | None


class DisclosureBrief(BaseModel):
    id: int
    series_id: int
    version: int = Field(
        description="number of this version within its series (1, then 2 after a correction); "
        "not what expected_version is checked against: that is lock_version"
    )
    region_code: str
    region_name: str
    category: DisclosureCategory
    category_label: str
    period_kind: PeriodKind
    period: str
    title: str
    status: DisclosureStatus
    published_at: datetime | None
    view_count: int
    row_count: int


class DisclosureRead(DisclosureBrief):
    body: str
    rows: list[dict[str, Any]]
    totals: Totals
    attachments: list[Attachment]
    reviewer_name: str | None
    supersedes_id: int | None
    superseded_by_id: int | None
    correction_reason: str | None
    withdraw_reason: str | None
    history: list[VersionBrief]
    question_item: QuestionItem = Field(description="pre-selected item for 'ask about this line'")


class StaffDisclosureRead(DisclosureRead):
    lock_version: int = Field(
        description="changes on every save; send it back as expected_version "
        "(PATCH, publish, withdraw, correct)"
    )
    author_id: int
    last_editor_id: int
    reviewer_id: int | None


class DisclosurePage(BaseModel):
    items: list[DisclosureBrief]
    next_cursor: str | None = None


class DisclosureRef(BaseModel):
    """Shown in a case file: the line a resident asked about, as it was published."""

    id: int
    version: int
    title: str
    category: DisclosureCategory
    period: str
    status: DisclosureStatus
    row_number: int | None
    row: dict[str, Any] | None
