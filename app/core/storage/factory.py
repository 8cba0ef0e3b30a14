from __future__ import annotations

from app.core.config import Settings
from app.core.storage.base import MediaStore
from app.core.storage.local import LocalMediaStore
from app.core.storage.s3 import S3MediaStore


def create_media_store(settings: Settings) -> MediaStore:
    if settings.storage == "s3":
        return S3MediaStore(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
            public_endpoint=settings.s3_public_endpoint,
            part_size=settings.s3_part_size,
            deadline_seconds=settings.storage_deadline_seconds,
            min_bytes_per_second=settings.storage_min_bytes_per_second,
            connect_timeout=settings.storage_connect_timeout_seconds,
            read_timeout=settings.storage_read_timeout_seconds,
        )
    return LocalMediaStore(
        settings.media_dir,
        secret=settings.resolved_jwt_secret(),
        public_base_url=settings.public_base_url,
    )
