"""From received bytes to a checked, stored original (and its poster frame).

Both doors use it: ``POST /media`` (bytes in the request) and
``/media/{id}/complete`` (bytes a phone posted to a one-time upload key).
The content is checked *before* anything is written to the final key:

* images are decoded (pixels checked from the header first) and written
  again without metadata;
* voice and video must decode (app/media/probe.py), within the kind's
  duration and pixel limits; a video's first keyframe becomes a JPEG poster;
* PDFs (staff only) are stored as sent.

Every object written is tracked, so a refusal or a failure later in the
request deletes them all: nothing half-written stays behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.storage import MediaStore, StoredObject
from app.media.images import clean_image
from app.media.probe import Probe, probe
from app.models import Media
from app.models.enums import MediaKind
from app.models.media import DeriveState

logger = logging.getLogger(__name__)
CHUNK = 256 * 1024


def object_key(media_id: str, suffix: str, created: Any, attempt: str | None = None) -> str:
    """``media/2026/11/24/<id>.<suffix>``: only the server writes under media/.

    ``attempt`` sets apart the keys of one of several checks of the same
    upload (``media_service.stage_completion``): each writes only its own
    objects, so the one that loses can take them back without touching the
    winner's."""
    if attempt is not None:
        return f"media/{created:%Y/%m/%d}/{media_id}.{attempt}.{suffix}"
    return f"media/{created:%Y/%m/%d}/{media_id}.{suffix}"


def entry(stored: StoredObject, content_type: str) -> dict[str, Any]:
    """How a derivative (poster, playable copy) is recorded in ``Media.derivatives``."""
    return {
        "key": stored.key,
        "content_type": content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "etag": stored.etag,
    }


async def merge_derivatives(
    session: AsyncSession, media_id: str, changed: Mapping[str, Any], **values: Any
) -> bool:
    """Set the ``changed`` entries of a media item's derivatives, keeping every
    other entry as the row holds it now; ``values`` (other columns) go in the
    same write. False when the row is gone.

    Several writers add entries, each after minutes of work on a copy of the
    row read before it: the playable copy (``ydt worker``'s media round), the
    parts a content check cuts (the moderation round, perhaps in another
    worker), a refreshed tag found by a resident's read. Writing back a
    whole dictionary read before that work dropped whatever another writer
    had added meanwhile, and an entry dropped is an object no cleanup finds.
    The row is read again under its lock (PostgreSQL; on SQLite the writer's
    transaction holds the database's write lock), so no entry is lost."""
    found = (
        await session.execute(
            select(Media.derivatives).where(Media.id == media_id).with_for_update()
        )
    ).one_or_none()
    if found is None:
        return False
    merged = {**(found[0] or {}), **changed}
    await session.execute(
        update(Media).where(Media.id == media_id).values(derivatives=merged, **values)
    )
    return True


def max_seconds(settings: Settings, kind: MediaKind) -> int:
    return (
        settings.media_max_voice_seconds
        if kind is MediaKind.voice
        else settings.media_max_video_seconds
    )


def check_av(settings: Settings, source: IO[bytes], kind: MediaKind, content_type: str) -> Probe:
    """Blocking: run in a thread."""
    source.seek(0)
    return probe(
        source,
        kind=kind,
        content_type=content_type,
        max_seconds=max_seconds(settings, kind),
        max_pixels=settings.media_max_video_pixels,
    )


def clean(settings: Settings, source: IO[bytes]) -> tuple[bytes, str, str, tuple[int, int]]:
    """Blocking: run in a thread."""
    source.seek(0)
    return clean_image(source, max_pixels=settings.media_max_image_pixels)


@dataclass
class Writes:
    """Objects written for one upload; ``discard`` takes them all back."""

    store: MediaStore
    keys: list[str] = field(default_factory=list)

    async def put(self, key: str, chunks: AsyncIterator[bytes], content_type: str) -> StoredObject:
        self.keys.append(key)  # before the write: a failed write may leave a part
        return await self.store.put_stream(key, chunks, content_type=content_type)

    async def discard(self) -> None:
        for key in reversed(self.keys):
            try:
                await self.store.delete(key)
            except Exception:  # the orphan sweep (ydt media cleanup) removes it later
                logger.warning("could not delete a refused upload", extra={"key": key})


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def file_chunks(fh: IO[bytes]) -> AsyncIterator[bytes]:
    """Read a local temporary file in a thread, chunk by chunk."""
    await asyncio.to_thread(fh.seek, 0)
    while chunk := await asyncio.to_thread(fh.read, CHUNK):
        yield chunk


async def store_checked(
    writes: Writes,
    settings: Settings,
    media: Media,
    source: IO[bytes],
    *,
    content_type: str,
    extension: str,
    attempt: str | None = None,
) -> None:
    """Check ``source`` (a seekable local file with the whole upload) by its
    kind, write what passed to the media's final key and record it on the row.

    ``content_type``/``extension`` are the sniffed ones; ``attempt``: see
    ``object_key``.
    """
    kind = media.kind
    if kind is MediaKind.image:
        data, ctype, ext, (width, height) = await asyncio.to_thread(clean, settings, source)
        key = object_key(media.id, ext, media.created_at, attempt)
        stored = await writes.put(key, once(data), ctype)
        media.width, media.height = width, height
    elif kind in (MediaKind.voice, MediaKind.video):
        found = await asyncio.to_thread(check_av, settings, source, kind, content_type)
        ctype = content_type
        key = object_key(media.id, extension, media.created_at, attempt)
        stored = await writes.put(key, file_chunks(source), ctype)
        await _record_probe(writes, media, found, content_type=ctype, attempt=attempt)
    else:
        ctype = content_type
        key = object_key(media.id, extension, media.created_at, attempt)
        stored = await writes.put(key, file_chunks(source), ctype)
    media.storage_key, media.content_type = key, ctype
    media.size, media.sha256, media.etag = stored.size, stored.sha256, stored.etag


async def _record_probe(
    writes: Writes, media: Media, found: Probe, *, content_type: str, attempt: str | None
) -> None:
    media.duration_ms, media.codec, media.audio_codec = (
        found.duration_ms,
        found.codec,
        found.audio_codec,
    )
    media.width, media.height = found.width, found.height
    derivatives: dict[str, Any] = {}
    if found.poster is not None:
        key = object_key(media.id, "poster.jpg", media.created_at, attempt)
        poster = await writes.put(key, once(found.poster), "image/jpeg")
        derivatives["poster"] = entry(poster, "image/jpeg")
    media.derivatives = derivatives or None
    # A QuickTime file is not played by every browser even when its codecs are.
    plays = found.playable() and content_type != "video/quicktime"
    media.derive_state = None if plays else DeriveState.pending


async def download(store: MediaStore, key: str, target: IO[bytes], *, limit: int) -> str:
    """Copy an object into a local file (at most ``limit`` bytes); its sha256."""
    sha = hashlib.sha256()
    total = 0
    async for chunk in store.iter_object(key):
        total += len(chunk)
        if total > limit:
            raise ValueError("object larger than its limit")
        sha.update(chunk)
        await asyncio.to_thread(target.write, chunk)
    await asyncio.to_thread(target.flush)
    return sha.hexdigest()
