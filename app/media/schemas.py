from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import DB_INT_MAX, RequestModel
from app.models.enums import MediaKind, MediaStatus


class KindLimit(BaseModel):
    max_bytes: int
    content_types: list[str]
    max_pixels: int | None = Field(default=None, description="image; video: per frame")
    max_seconds: int | None = Field(default=None, description="voice and video")


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
    duration_ms: int | None = Field(default=None, description="voice and video, as decoded")
    codec: str | None = Field(default=None, description="voice: audio codec; video: video codec")
    sha256: str | None = Field(default=None, description="of the original as stored")
    url: str | None = Field(
        default=None, description="short-lived presigned link to the original (the evidence)"
    )
    play_url: str | None = Field(
        default=None,
        description="what plays in a browser or phone: the original, or a copy the server "
        "made (AAC / H.264); null while that copy is being made",
    )
    poster_url: str | None = Field(default=None, description="video: a JPEG of the first frame")
    moderation: str | None = Field(
        default=None,
        description="WeChat content security: null (not checked), checking, pass, review "
        "(passed to staff with a flag) or risky (withheld: no link, cannot be attached)",
    )
    moderation_note: str | None = Field(
        default=None, description="what the resident is told about the check, in Chinese"
    )


class TicketRequest(RequestModel):
    kind: MediaKind
    content_type: str = Field(min_length=3, max_length=64)
    size: int = Field(gt=0, le=DB_INT_MAX, description="exact size in bytes of the file to upload")


class TicketRead(BaseModel):
    media_id: str
    url: str
    fields: dict[str, str]
    expires_at: datetime
    max_size: int
