from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.core.schemas import BoundedDatetime, RequestModel
from app.models.enums import Channel, RegionLevel


class HistoricalCase(RequestModel):
    """One case handled before this system (历史件): its real dates and outcome."""

    channel: Channel = Field(description="how it came in (visit, phone, letter, ...)")
    item_code: str = Field(pattern=r"^\d{4}$")
    region_code: str = Field(pattern=r"^\d{12}$", description="the village (12 digits)")
    content: str = Field(min_length=5, max_length=2000)
    received_at: BoundedDatetime = Field(description="when it really came in, with its offset")
    accepted_at: BoundedDatetime | None = Field(
        default=None, description="when it was accepted (closed outcome; default: received_at)"
    )
    closed_at: BoundedDatetime = Field(
        description="when it was closed (销号), or when acceptance was refused"
    )
    outcome: Literal["closed", "rejected"] = Field(
        description="closed (办结销号) or rejected (不予受理)"
    )
    result: str = Field(
        min_length=2, max_length=2000, description="the handling result, or the refusal's reason"
    )
    anonymous: bool = False
    contact_name: str | None = Field(default=None, max_length=32)
    contact_phone: str | None = Field(default=None, max_length=20)
    accused_level: RegionLevel | None = None


class HistoricalImport(RequestModel):
    rows: list[HistoricalCase] = Field(min_length=1, max_length=500)
    dry_run: bool = Field(default=False, description="check every row, import nothing")


class ImportedCase(BaseModel):
    row: int = Field(description="1-based row of the request (an .xlsx: its Excel row)")
    id: str
    tracking_no: str


class HistoricalImported(BaseModel):
    count: int = Field(description="cases imported (a dry run: that would be imported)")
    items: list[ImportedCase]
    dry_run: bool = False
