"""Shared request-side types: the one place boundary rules for payloads live.

Every request body inherits ``RequestModel``; every integer id that reaches SQL
is a ``DbId`` (the range of the INTEGER column it is compared with), so a
hostile 2**70 is a 422 at the edge, never an overflow inside the driver.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# INTEGER columns are 32-bit signed on PostgreSQL; SQLite is wider, but one
# range for both keeps behaviour identical.
DB_INT_MAX = 2**31 - 1

DbId = Annotated[int, Field(ge=1, le=DB_INT_MAX)]


class RequestModel(BaseModel):
    """Base of every request body: unknown fields and NaN/Infinity are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
