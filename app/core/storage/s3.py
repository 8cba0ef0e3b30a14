"""MinIO / any S3 server through the ``minio`` SDK.

The SDK is blocking, so every call runs in a worker thread, under an overall
deadline: a frozen server (accepts, never answers) must cost the request a
bounded time and a 503, not the SDK's minutes of retries. The deadline is
``deadline_seconds`` plus one second per ``min_bytes_per_second`` bytes the
call moved, so a large healthy transfer is not cut short. The thread cannot be
killed; it is abandoned and ends by its own socket timeouts (``Timeout``
below, with no retry after a request was sent). If an abandoned *write*
still succeeds, the thread deletes what it wrote, so a 503 never leaves an
object behind; a write the server applies after our side gave up is removed
by the orphan sweep (app/media/maintenance.py).

Presigning is a local computation (the region is configured), done with a
second client bound to the public endpoint when phones reach MinIO through
another host name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread
import urllib3
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error

from app.core.errors import AppError
from app.core.storage._hashing import StreamingReader
from app.core.storage.base import (
    ObjectInfo,
    PresignedPost,
    StorageError,
    StoredObject,
    validate_key,
    validate_prefix,
)

logger = logging.getLogger(__name__)

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound", "NotFound"}


class _Call:
    """One blocking SDK call that its caller may stop waiting for.

    ``run`` (in the worker thread) and ``abandon`` (on the event loop, at the
    deadline) settle under one lock whether the result was handed over or
    must be undone, so a write is either reported or taken back, never both
    or neither.
    """

    def __init__(self, fn: Callable[[], Any], undo: Callable[[Any], None] | None) -> None:
        self._fn, self._undo = fn, undo
        self._lock = threading.Lock()
        self._state = "running"  # -> "done" | "abandoned"
        self._result: Any = None

    @property
    def abandoned(self) -> bool:
        return self._state == "abandoned"

    def run(self) -> Any:
        result = self._fn()
        with self._lock:
            if self._state == "running":
                self._state, self._result = "done", result
                return result
        if self._undo is not None:
            try:
                self._undo(result)
            except Exception:  # the orphan sweep removes it later
                logger.warning("could not undo a storage write that landed after its deadline")
            else:
                logger.info("a storage write that landed after its deadline was taken back")
        return result

    def abandon(self) -> tuple[bool, Any]:
        with self._lock:
            if self._state == "done":
                return True, self._result
            self._state = "abandoned"
            return False, None


class _Abandoned(Exception):
    """Raised into the SDK's read loop once the caller gave up."""


class _DeadlineReader(StreamingReader):
    """The body of a streamed upload: each chunk buys more time, and once the
    call is abandoned the next read stops the SDK (which aborts its upload)."""

    def __init__(self, chunks: AsyncIterable[bytes], rate: int) -> None:
        super().__init__(chunks)
        self._rate = rate
        self.scope: anyio.CancelScope | None = None
        self.call: _Call | None = None
        self.source_error: BaseException | None = None

    async def _next(self) -> bytes | None:
        try:
            chunk = await super()._next()
        except BaseException as exc:  # the client's stream broke, or a size limit
            self.source_error = exc
            raise
        if chunk and self.scope is not None:
            self.scope.deadline += len(chunk) / self._rate
        return chunk

    def read(self, n: int = -1) -> bytes:
        if self.call is not None and self.call.abandoned:
            raise _Abandoned
        return super().read(n)


class S3MediaStore:
    name = "s3"

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool,
        region: str,
        public_endpoint: str | None = None,
        part_size: int = 10 * 1024 * 1024,
        public_secure: bool | None = None,
        deadline_seconds: float = 20.0,
        min_bytes_per_second: int = 1024 * 1024,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
    ) -> None:
        # Every wait of the SDK is bounded: connecting (and, in urllib3,
        # sending one request body), then each read. A read timeout is not
        # retried (the request was sent: retrying only doubles the wait);
        # refused connections and 502-504 are, briefly.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=2,
                connect=2,
                read=0,
                other=0,
                backoff_factor=0.2,
                status_forcelist=[502, 503, 504],
            ),
            maxsize=16,
        )
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        pub_endpoint, pub_secure = _split_endpoint(
            public_endpoint, secure if public_secure is None else public_secure
        )
        self._signer = (
            Minio(
                pub_endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=pub_secure,
                region=region,
            )
            if pub_endpoint
            else self._client
        )
        self._bucket = bucket
        sign_host, sign_secure = (pub_endpoint, pub_secure) if pub_endpoint else (endpoint, secure)
        self._post_url = f"{'https' if sign_secure else 'http'}://{sign_host}/{bucket}"
        self._part_size = max(part_size, 5 * 1024 * 1024)
        self._deadline = deadline_seconds
        self._rate = min_bytes_per_second

    async def _run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        undo: Callable[[Any], None] | None = None,
        reader: _DeadlineReader | None = None,
        seconds: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call the SDK in a thread; S3Error passes through, anything else
        (network, DNS, TLS, the deadline) is a StorageError."""
        call = _Call(lambda: fn(*args, **kwargs), undo)
        what = getattr(fn, "__name__", "call")
        with anyio.move_on_after(self._deadline if seconds is None else seconds) as scope:
            if reader is not None:
                reader.scope, reader.call = scope, call
            try:
                return await anyio.to_thread.run_sync(call.run, abandon_on_cancel=True)
            except S3Error:
                raise
            except Exception as exc:
                if reader is not None and reader.source_error is not None:
                    raise reader.source_error from None  # the client's fault, not ours
                if isinstance(exc, AppError):
                    raise
                logger.warning(
                    "object storage call failed",
                    extra={"call": what, "error": f"{type(exc).__name__}: {exc}"},
                )
                raise StorageError() from exc
        finished, result = call.abandon()
        if finished:
            return result
        logger.warning(
            "object storage call abandoned at its deadline",
            extra={"call": what, "deadline_seconds": round(scope.deadline, 1)},
        )
        raise StorageError("文件存储响应超时，请稍后重试")

    def _forget(self, key: str) -> Callable[[Any], None]:
        def undo(_: Any) -> None:
            self._client.remove_object(self._bucket, key)

        return undo

    async def start(self) -> None:
        if not await self._run(self._client.bucket_exists, self._bucket):
            try:
                await self._run(self._client.make_bucket, self._bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StorageError(f"无法创建存储桶 {self._bucket}: {exc.code}") from exc
        logger.info("object storage ready", extra={"bucket": self._bucket})

    async def check(self) -> None:
        try:
            exists = await self._run(self._client.bucket_exists, self._bucket)
        except S3Error as exc:
            raise StorageError(f"对象存储错误: {exc.code}") from exc
        if not exists:
            raise StorageError(f"存储桶 {self._bucket} 不存在")

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str
    ) -> StoredObject:
        validate_key(key)
        reader = _DeadlineReader(chunks, self._rate)
        try:
            result = await self._run(
                self._client.put_object,
                self._bucket,
                key,
                reader,
                -1,
                content_type=content_type,
                part_size=self._part_size,
                num_parallel_uploads=1,
                undo=self._forget(key),
                reader=reader,
            )
        except S3Error as exc:
            raise StorageError(f"写入对象存储失败: {exc.code}") from exc
        return StoredObject(
            key=key, size=reader.size, sha256=reader.sha256, etag=_clean_etag(result.etag)
        )

    async def stat(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        try:
            obj = await self._run(self._client.stat_object, self._bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise StorageError(f"读取对象信息失败: {exc.code}") from exc
        return ObjectInfo(
            key=key,
            size=int(obj.size or 0),
            content_type=obj.content_type,
            last_modified=obj.last_modified,
            etag=_clean_etag(obj.etag),
        )

    async def read_head(self, key: str, length: int) -> bytes:
        validate_key(key)

        def _read() -> bytes:
            resp = self._client.get_object(self._bucket, key, offset=0, length=length)
            try:
                return bytes(resp.read())
            finally:
                resp.close()
                resp.release_conn()

        try:
            data: bytes = await self._run(_read, seconds=self._budget(length))
        except S3Error as exc:
            raise StorageError(f"读取对象失败: {exc.code}") from exc
        return data

    async def iter_object(self, key: str, *, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        validate_key(key)
        try:
            resp = await self._run(self._client.get_object, self._bucket, key)
        except S3Error as exc:
            raise StorageError(f"读取对象失败: {exc.code}") from exc
        try:
            while True:
                # Each chunk within the deadline: the consumer may be slow
                # (hashing, zipping), the server may not.
                chunk: bytes = await self._run(resp.read, chunk_size, seconds=self._budget(0))
                if not chunk:
                    break
                yield chunk
        finally:
            resp.close()
            resp.release_conn()

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await self._run(self._client.remove_object, self._bucket, key)
        except S3Error as exc:
            if exc.code not in _NOT_FOUND:
                raise StorageError(f"删除对象失败: {exc.code}") from exc

    async def list_prefix(self, prefix: str, *, limit: int = 10_000) -> list[ObjectInfo]:
        validate_prefix(prefix)

        def _list() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            for obj in self._client.list_objects(self._bucket, prefix=prefix, recursive=True):
                if obj.is_dir or obj.object_name is None:
                    continue
                found.append(
                    ObjectInfo(
                        key=obj.object_name,
                        size=int(obj.size or 0),
                        content_type=None,
                        last_modified=obj.last_modified,
                        etag=_clean_etag(obj.etag),
                    )
                )
                if len(found) >= limit:
                    break
            return found

        try:
            listed: list[ObjectInfo] = await self._run(_list, seconds=self._budget(0) * 3)
        except S3Error as exc:
            raise StorageError(f"列出对象失败: {exc.code}") from exc
        return listed

    def _budget(self, size: int) -> float:
        return self._deadline + size / self._rate

    async def presigned_get(self, key: str, *, expires_seconds: int, now: datetime) -> str:
        validate_key(key)
        url: str = await self._run(
            self._signer.presigned_get_object,
            self._bucket,
            key,
            expires=timedelta(seconds=expires_seconds),
            request_date=now,
        )
        return url

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
        policy = PostPolicy(self._bucket, expires_at)
        # The key is fixed exactly (a prefix would let a client pick names).
        policy.add_equals_condition("key", key)
        policy.add_equals_condition("Content-Type", content_type)
        policy.add_content_length_range_condition(min_size, max_size)
        fields: dict[str, str] = await self._run(self._signer.presigned_post_policy, policy)
        fields = {**fields, "key": key, "Content-Type": content_type}
        return PresignedPost(url=self._post_url, fields=fields, key=key, expires_at=expires_at)


def _clean_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def _split_endpoint(endpoint: str | None, default_secure: bool) -> tuple[str | None, bool]:
    """Accept ``host:port`` or a URL (``https://media.example.cn``)."""
    if not endpoint:
        return None, default_secure
    if endpoint.startswith(("http://", "https://")):
        secure = endpoint.startswith("https://")
        return endpoint.split("://", 1)[1].rstrip("/"), secure
    return endpoint, default_secure
