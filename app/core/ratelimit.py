"""Fixed-window rate limits over the shared store (all workers count together)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request

from app.core.errors import TooManyRequests
from app.core.shared import SharedStore


async def enforce(
    store: SharedStore, key: str, *, limit: int, window_seconds: int, now: datetime, what: str
) -> None:
    count, retry_after = await store.hit(key, window_seconds=window_seconds, now=now)
    if count > limit:
        raise TooManyRequests(
            f"{what}过于频繁，请 {retry_after} 秒后再试", headers={"Retry-After": str(retry_after)}
        )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
