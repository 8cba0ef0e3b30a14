"""The MediaStore contract both implementations honour."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.core.errors import BadRequest, ServiceUnavailable


class StorageError(ServiceUnavailable):
    """Object storage unreachable, refusing or too slow: a 503 the client may retry.

    The detail is generic on purpose (the cause is logged, never shown: it
    names internal hosts).
    """

    code = "storage_unavailable"
    retry_after_seconds = 30

    def __init__(
        self,
        detail: str = "文件存储暂时不可用，请稍后重试",
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            detail,
            headers={"Retry-After": str(self.retry_after_seconds), **(headers or {})},
            extra=extra,
        )


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
    # The backend's version tag of what was written (S3 ETag; for a folder,
    # inode/ctime/size). Any later write changes it, so a matching tag vouches
    # that the bytes are still the ones whose sha256 was taken.
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None
    last_modified: datetime | None
    etag: str | None = None


def validate_prefix(prefix: str) -> str:
    """A listing prefix: a valid key, optionally ending in one slash."""
    validate_key(prefix.removesuffix("/"))
    return prefix


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

    async def list_prefix(self, prefix: str, *, limit: int = 10_000) -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (at most ``limit``)."""

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
