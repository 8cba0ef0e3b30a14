"""The MediaStore contract both implementations honour."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from app.core.errors import BadRequest, ServiceUnavailable


class StorageError(ServiceUnavailable):
    code = "storage_unavailable"


_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,511}$")


def validate_key(key: str) -> str:
    """Keys are server-made, but check anyway: no traversal, no absolute paths."""
    if not _KEY_RE.fullmatch(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise BadRequest(f"非法的对象键: {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None
    last_modified: datetime | None


@dataclass(frozen=True, slots=True)
class PresignedPost:
    url: str
    fields: dict[str, str] = field(default_factory=dict)
    key: str = ""
    expires_at: datetime | None = None


class MediaStore(Protocol):
    name: str

    async def start(self) -> None:
        """Prepare the backend (create the bucket or folder)."""

    async def check(self) -> None:
        """Raise StorageError when the backend cannot be reached."""

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str
    ) -> StoredObject:
        """Store a body of unknown length without holding it in memory."""

    async def stat(self, key: str) -> ObjectInfo | None: ...

    async def read_head(self, key: str, length: int) -> bytes: ...

    def iter_object(self, key: str, *, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def presigned_get(self, key: str, *, expires_seconds: int, now: datetime) -> str: ...

    async def presigned_post(
        self,
        key: str,
        *,
        content_type: str,
        min_size: int,
        max_size: int,
        expires_seconds: int,
        now: datetime,
    ) -> PresignedPost: ...
