"""Duplicate hints for residents, duplicate lists and merges for staff."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.complaints.schemas import ItemBrief, Location
from app.core.schemas import DB_INT_MAX, RequestModel
from app.models.enums import ComplaintStatus

CASE_ID = r"^[0-9a-f]{32}$"


class SimilarQuery(RequestModel):
    region_code: str = Field(pattern=r"^\d{12}$", description="the village being filed in")
    item_code: str | None = Field(
        default=None,
        pattern=r"^\d{4}$",
        description="the chosen item; cases of the same category count as related",
    )
    content: str = Field(min_length=1, max_length=2000, description="the text being written")
    location: Location | None = Field(
        default=None, description="when given, cases located nearby count as well"
    )


class Progress(BaseModel):
    label: str
    at: datetime


class SimilarCase(BaseModel):
    """What any resident may read of someone else's open case: no identity,
    no internal notes, the text masked and cut."""

    id: str
    tracking_no: str
    item: ItemBrief
    region_name: str
    status: ComplaintStatus
    status_label: str
    summary: str
    progress: Progress | None
    created_at: datetime
    similarity: float
    followers: int
    following: bool


class SimilarResponse(BaseModel):
    items: list[SimilarCase]
    prompt: str = Field(description="the mini-program's question; a hint, never a block")


class FollowState(BaseModel):
    complaint_id: str
    following: bool
    followers: int


class DuplicateCandidate(BaseModel):
    id: str
    tracking_no: str
    item: ItemBrief
    region_name: str
    status: ComplaintStatus
    status_label: str
    content: str
    received_at: datetime
    similarity: float = Field(description="text similarity 0-1")
    score: float = Field(description="similarity plus the other signals, for ranking")
    likely: bool = Field(description="at or above the duplicate threshold, or same complainant")
    reasons: list[str]
    merged_into: str | None = Field(description="the parent's id when this case was merged")


class CaseRef(BaseModel):
    id: str
    tracking_no: str


class DuplicateList(BaseModel):
    complaint_id: str
    threshold: float
    merged_into: CaseRef | None
    merged_children: list[CaseRef]
    items: list[DuplicateCandidate]


class MergeRequest(RequestModel):
    parent_id: str = Field(pattern=CASE_ID, description="the case this one duplicates")
    expected_version: int = Field(ge=1, le=DB_INT_MAX, description="this (child) case's version")
    note: str = Field(default="", max_length=2000, description="internal note, staff only")


class UnmergeRequest(RequestModel):
    expected_version: int = Field(ge=1, le=DB_INT_MAX, description="this (child) case's version")
    note: str = Field(default="", max_length=2000, description="internal note, staff only")


class MergeResult(BaseModel):
    child: CaseRef
    parent: CaseRef
    child_status: ComplaintStatus
    child_version: int
    parent_version: int
    merged: bool
