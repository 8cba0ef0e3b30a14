"""Object storage behind one interface: MinIO/S3 in production, a folder embedded."""

from app.core.storage.base import (
    MediaStore,
    ObjectInfo,
    PresignedPost,
    StorageError,
    StoredObject,
    validate_key,
)
from app.core.storage.factory import create_media_store

__all__ = [
    "MediaStore",
    "ObjectInfo",
    "PresignedPost",
    "StorageError",
    "StoredObject",
    "create_media_store",
    "validate_key",
]
