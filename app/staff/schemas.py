from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.schemas import RequestModel
from app.models.enums import StaffRole
from app.models.staff import LoginOutcome

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")


class StaffCreate(RequestModel):
    """A new account. Whether the password is guessable is judged by the
    service (app/staff/passwords.py), which knows the unit's name too."""

    model_config = ConfigDict(str_strip_whitespace=True)

    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=8, max_length=128)
    role: StaffRole
    display_name: str = Field(min_length=1, max_length=64)
    unit_code: str | None = Field(default=None, max_length=40)
    department_code: str | None = Field(default=None, max_length=8)
    region_code: str | None = Field(
        default=None, pattern=r"^\d{12}$", description="handlers: where their department sits"
    )
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$")

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        value = value.lower()
        if not USERNAME_RE.fullmatch(value):
            raise ValueError("用户名须以小写字母开头，只含小写字母、数字、下划线、点或连字符")
        return value

    @model_validator(mode="after")
    def _scope(self) -> StaffCreate:
        if self.role is StaffRole.handler and not (self.department_code and self.region_code):
            raise ValueError("承办人（handler）必须指定所属职能部门及其所在区划")
        if (
            self.role in (StaffRole.supervisor, StaffRole.leader, StaffRole.agent)
            and not self.unit_code
        ):
            raise ValueError(f"{self.role.value} 必须指定所属监督单位")
        if self.role in (StaffRole.clerk, StaffRole.committee) and not self.region_code:
            raise ValueError("村务公开经办人和村务监督委员会成员必须指定所在村（社区）")
        return self


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: StaffRole
    unit_id: int | None
    department_code: str | None
    region_code: str | None = None
    active: bool


class StaffPage(BaseModel):
    items: list[StaffRead]
    next_cursor: str | None = None


class LoginRequest(RequestModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=10, max_length=4096)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: str
    refresh_token: str | None = None
    refresh_expires_at: str | None = None


class StaffUpdate(RequestModel):
    """An admin's change to an account: disable or enable it, reset its password,
    correct the name or phone. Disabling or a new password ends its sessions."""

    model_config = ConfigDict(str_strip_whitespace=True)

    active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=128)
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$")

    @model_validator(mode="after")
    def _something(self) -> StaffUpdate:
        if all(getattr(self, f) is None for f in ("active", "password", "display_name", "phone")):
            raise ValueError("至少需要修改一项：active、password、display_name 或 phone")
        return self


class RevokeResult(BaseModel):
    revoked: int = Field(description="sessions ended (token families and console sessions)")


class LoginAttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    ip: str
    outcome: LoginOutcome


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description="api (token pair) or console (browser)")
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


class StaffMe(StaffRead):
    unit_code: str | None = None
    unit_name: str | None = None
