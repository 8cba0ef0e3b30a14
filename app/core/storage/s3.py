"""MinIO / any S3 server through the ``minio`` SDK.

The SDK is blocking, so every call runs in a worker thread. Presigning is a
local computation (the region is configured), done with a second client bound
to the public endpoint when phones reach MinIO through another host name.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import urllib3
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error

from app.core.storage._hashing import StreamingReader
from app.core.storage.base import (
    ObjectInfo,
    PresignedPost,
    StorageError,
    StoredObject,
    validate_key,
)

logger = logging.getLogger(__name__)

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound", "NotFound"}


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
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=60.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
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

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except S3Error:
            raise
        except Exception as exc:  # network, DNS, TLS: the backend is unreachable
            raise StorageError(f"对象存储不可用: {type(exc).__name__}: {exc}") from exc

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
        reader = StreamingReader(chunks)
        try:
            await self._run(
                self._client.put_object,
                self._bucket,
                key,
                reader,
                -1,
                content_type=content_type,
                part_size=self._part_size,
                num_parallel_uploads=1,
            )
        except S3Error as exc:
            raise StorageError(f"写入对象存储失败: {exc.code}") from exc
        return StoredObject(key=key, size=reader.size, sha256=reader.sha256)

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
            data: bytes = await self._run(_read)
        except S3Error as exc:
            raise StorageError(f"读取对象失败: {exc.code}") from exc
        return data

    async def iter_object(self, key: str, *, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        validate_key(key)
        resp = await self._run(self._client.get_object, self._bucket, key)
        try:
            while True:
                chunk: bytes = await anyio.to_thread.run_sync(resp.read, chunk_size)
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


def _split_endpoint(endpoint: str | None, default_secure: bool) -> tuple[str | None, bool]:
    """Accept ``host:port`` or a URL (``https://media.example.cn``)."""
    if not endpoint:
        return None, default_secure
    if endpoint.startswith(("http://", "https://")):
        secure = endpoint.startswith("https://")
        return endpoint.split("://", 1)[1].rstrip("/"), secure
    return endpoint, default_secure
