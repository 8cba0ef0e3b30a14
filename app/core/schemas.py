"""Shared request-side types: the one place boundary rules for payloads live.

Every request body inherits ``RequestModel``; every integer id that reaches SQL
is a ``DbId`` (the range of the INTEGER column it is compared with), so a
hostile 2**70 is a 422 at the edge, never an overflow inside the driver.

Text: one rule for every string a client sends. Control characters (C0 and C1,
DEL) and lone UTF-16 surrogates are refused with a Chinese 422, except tab, line
feed and carriage return, which a person types into multi-line text. Nobody
means a NUL, and PostgreSQL cannot store one (SQLite would, so the two
databases would disagree). Refusing, rather than silently stripping, keeps what
is stored exactly what the person sent. Bodies are checked here; paths and
query strings by app.core.boundary with the same character class.

Dates and moments are bounded to ``DATE_MIN``..``DATE_MAX``: deadline arithmetic
on year 1 or 9999 overflows, and nothing in this service predates 2000.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

# INTEGER columns are 32-bit signed on PostgreSQL; SQLite is wider, but one
# range for both keeps behaviour identical.
DB_INT_MAX = 2**31 - 1

DbId = Annotated[int, Field(ge=1, le=DB_INT_MAX)]

# Characters nobody types: C0 controls but \t \n \r, DEL, C1 controls, and lone
# surrogates (only reachable through a JSON "\ud800" escape; not encodable as UTF-8).
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# In a path or query string even \t \n \r are not meant.
CONTROL_CHARS_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_CHAR_MESSAGE = "内容含有无法识别的控制字符，请删除后重试"

DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2100, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def has_control_chars(value: Any) -> bool:
    """Whether any string in ``value`` (nested lists and dicts, keys too) has one."""
    if isinstance(value, str):
        return CONTROL_CHARS.search(value) is not None
    if isinstance(value, dict):
        return any(has_control_chars(k) or has_control_chars(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_control_chars(v) for v in value)
    return False


def check_text(value: str) -> str:
    if CONTROL_CHARS.search(value) is not None:
        raise ValueError(CONTROL_CHAR_MESSAGE)
    return value


# For a plain Form() or other str parameter outside a RequestModel.
SafeStr = Annotated[str, AfterValidator(check_text)]


def _iso_date_only(value: Any) -> Any:
    """A date must be written as one: pydantic would read ``0`` or ``1700000000``
    as seconds since 1970, which no client means by ``to=0``."""
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError("日期格式应为 YYYY-MM-DD，例如 2026-11-24")
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("日期格式应为 YYYY-MM-DD，例如 2026-11-24")
    return value


def _date_in_range(value: date) -> date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValueError(f"日期须在 {DATE_MIN.year}–{DATE_MAX.year} 年之间")
    return value


def _moment_in_range(value: datetime) -> datetime:
    if not DATE_MIN <= value.astimezone(UTC).date() <= DATE_MAX:
        raise ValueError(f"时间须在 {DATE_MIN.year}–{DATE_MAX.year} 年之间")
    return value


def _moment_written(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("时间须写成 ISO 8601 格式并带时区，例如 2026-11-20T09:30:00+08:00")
    return value


# A calendar day from a client (query or body): ISO form, 2000..2100.
BoundedDate = Annotated[date, BeforeValidator(_iso_date_only), AfterValidator(_date_in_range)]
# A moment from a client: ISO 8601 with an offset, 2000..2100.
BoundedDatetime = Annotated[
    AwareDatetime, BeforeValidator(_moment_written), AfterValidator(_moment_in_range)
]


class RequestModel(BaseModel):
    """Base of every request body: unknown fields, NaN/Infinity and control
    characters anywhere in the text (nested lists and dicts included) are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_chars(cls, value: Any) -> Any:
        if has_control_chars(value):
            raise ValueError(CONTROL_CHAR_MESSAGE)
        return value
