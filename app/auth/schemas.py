from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel
from app.regions.schemas import SceneRead


class WeChatLogin(RequestModel):
    code: str = Field(min_length=1, max_length=128, description="the code from wx.login()")
    scene: str | None = Field(default=None, max_length=64, description="QR scene of the village")


class DevLogin(RequestModel):
    openid: str = Field(min_length=1, max_length=64)
    scene: str | None = Field(default=None, max_length=64)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=10, max_length=2048)


class CitizenRead(BaseModel):
    id: int
    region_code: str | None
    place: SceneRead | None = None


class CitizenToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    citizen: CitizenRead
