from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.models.enums import StaffRole

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")


class StaffCreate(BaseModel):
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

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        kinds = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
        if kinds < 3:
            raise ValueError("密码至少 8 位，且包含大写字母、小写字母、数字、符号中的三类")
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


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: str
    refresh_token: str | None = None


class StaffMe(StaffRead):
    unit_code: str | None = None
    unit_name: str | None = None
