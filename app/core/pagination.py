from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")


class PageParams(BaseModel):
    limit: int
    offset: int

    def next_cursor(self, returned: int) -> str | None:
        return str(self.offset + self.limit) if returned == self.limit else None


# async although it never awaits: FastAPI runs a plain def dependency in its
# thread pool, which costs more than the work here.
async def page_params(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,9}$")] = None,
    offset: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
) -> PageParams:
    start = offset if offset is not None else int(cursor) if cursor else 0
    return PageParams(limit=limit, offset=start)
