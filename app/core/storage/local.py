"""Media in a local folder, for the embedded default.

Presigned URLs point back at the app (``/media-files/...`` and
``/api/v1/media/direct-upload``) and carry an HMAC over the key, limits and
expiry, so the same client code works as with MinIO.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import anyio.to_thread

from app.core.errors import BadRequest, Forbidden
from app.core.storage.base import (
    ObjectInfo,
    PresignedPost,
    StorageError,
    StoredObject,
    validate_key,
    validate_prefix,
)


class LocalMediaStore:
    name = "local"

    def __init__(self, root: Path, *, secret: str, public_base_url: str) -> None:
        self._root = root.resolve()
        self._secret = secret.encode()
        self._base = public_base_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        validate_key(key)
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root):
            raise BadRequest(f"非法的对象键: {key!r}")
        return path

    async def start(self) -> None:
        await anyio.to_thread.run_sync(
            lambda: (self._root / ".tmp").mkdir(parents=True, exist_ok=True)
        )

    async def check(self) -> None:
        def _probe() -> None:
            if not self._root.is_dir() or not os.access(self._root, os.W_OK):
                raise StorageError(f"媒体目录不可写: {self._root}")

        await anyio.to_thread.run_sync(_probe)

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str
    ) -> StoredObject:
        target = self.path_for(key)
        tmp = self._root / ".tmp" / f"{uuid.uuid4().hex}.part"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        size = 0
        try:
            async with await anyio.open_file(tmp, "wb") as fh:
                async for chunk in chunks:
                    sha.update(chunk)
                    size += len(chunk)
                    await fh.write(chunk)
            st = await anyio.to_thread.run_sync(_move_into_place, tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredObject(key=key, size=size, sha256=sha.hexdigest(), etag=_etag(st))

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            st = await anyio.to_thread.run_sync(path.stat)
        except FileNotFoundError:
            return None
        return _info(key, st)

    async def read_head(self, key: str, length: int) -> bytes:
        path = self.path_for(key)
        try:
            async with await anyio.open_file(path, "rb") as fh:
                return await fh.read(length)
        except FileNotFoundError as exc:
            raise StorageError(f"对象不存在: {key}") from exc

    async def iter_object(self, key: str, *, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        async with await anyio.open_file(path, "rb") as fh:
            while chunk := await fh.read(chunk_size):
                yield chunk

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def list_prefix(self, prefix: str, *, limit: int = 10_000) -> list[ObjectInfo]:
        validate_prefix(prefix)
        base = self.path_for(prefix.removesuffix("/"))
        folder = base if prefix.endswith("/") else base.parent

        def _list() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            if not folder.is_dir():
                return found
            for path in sorted(folder.rglob("*")):
                key = path.relative_to(self._root).as_posix()
                if path.is_file() and key.startswith(prefix):
                    found.append(_info(key, path.stat()))
                    if len(found) >= limit:
                        break
            return found

        return await anyio.to_thread.run_sync(_list)

    # -- signed URLs ---------------------------------------------------------

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    async def presigned_get(self, key: str, *, expires_seconds: int, now: datetime) -> str:
        validate_key(key)
        exp = int((now + timedelta(seconds=expires_seconds)).timestamp())
        sig = self._sign(f"GET\n{key}\n{exp}")
        return f"{self._base}/media-files/{quote(key)}?{urlencode({'exp': exp, 'sig': sig})}"

    def verify_get(self, key: str, exp: int, sig: str, *, now: datetime) -> Path:
        if exp < int(now.timestamp()):
            raise Forbidden("链接已过期")
        if not hmac.compare_digest(self._sign(f"GET\n{key}\n{exp}"), sig):
            raise Forbidden("链接签名无效")
        return self.path_for(key)

    async def presigned_post(
        self,
        key: str,
        *,
        content_type: str,
        min_size: int,
        max_size: int,
        expires_seconds: int,
        now: datetime,
    ) -> PresignedPost:
        validate_key(key)
        expires_at = now + timedelta(seconds=expires_seconds)
        policy = {
            "key": key,
            "content_type": content_type,
            "min": min_size,
            "max": max_size,
            "exp": int(expires_at.timestamp()),
        }
        encoded = base64.urlsafe_b64encode(json.dumps(policy, sort_keys=True).encode()).decode()
        fields = {
            "key": key,
            "Content-Type": content_type,
            "policy": encoded,
            "signature": self._sign(f"POST\n{encoded}"),
        }
        return PresignedPost(
            url=f"{self._base}/api/v1/media/direct-upload",
            fields=fields,
            key=key,
            expires_at=expires_at,
        )

    def verify_post_policy(self, policy: str, signature: str, *, now: datetime) -> dict[str, Any]:
        """Check a direct-upload form the way S3 checks a POST policy."""
        if not hmac.compare_digest(self._sign(f"POST\n{policy}"), signature):
            raise Forbidden("上传凭证签名无效")
        try:
            data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(policy.encode()))
        except (ValueError, json.JSONDecodeError) as exc:
            raise Forbidden("上传凭证格式无效") from exc
        if int(data["exp"]) < int(now.timestamp()):
            raise Forbidden("上传凭证已过期")
        return data


def _move_into_place(tmp: Path, target: Path) -> os.stat_result:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)  # atomic: a reader sees the old file or the new one
    return target.stat()


def _etag(st: os.stat_result) -> str:
    """A version tag no write can keep: every write (even one that restores the
    mtime) gives a new inode or ctime."""
    return f"{st.st_ino:x}-{st.st_ctime_ns:x}-{st.st_size:x}"


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        content_type=None,
        last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        etag=_etag(st),
    )
