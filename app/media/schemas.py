from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.models.enums import MediaKind, MediaStatus


class KindLimit(BaseModel):
    max_bytes: int
    content_types: list[str]


class MediaLimits(BaseModel):
    image: KindLimit
    voice: KindLimit
    video: KindLimit
    document: KindLimit
    max_per_complaint: dict[str, int]


class MediaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: MediaKind
    status: MediaStatus
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    created_at: datetime
    url: str | None = Field(default=None, description="short-lived presigned link")


class TicketRequest(BaseModel):
    kind: MediaKind
    content_type: str = Field(min_length=3, max_length=64)
    size: int = Field(gt=0, description="exact size in bytes of the file to upload")


class TicketRead(BaseModel):
    media_id: str
    url: str
    fields: dict[str, str]
    expires_at: datetime
    max_size: int
