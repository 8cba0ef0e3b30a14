"""The dossier's media, each read once through its sha256 check.

An object is streamed through ``integrity.verify_object`` into a scratch
file, so memory holds one chunk whatever the file weighs. Bytes that match
the record (or that have no record to compare) may be packed and, for an
image, thumbnailed; a mismatch or a missing object is reported, flagged on
the row as ``integrity.unchanged`` would, and never packed. A video's
thumbnail is its poster frame, itself checked against the sha256 recorded
for it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from app.core.storage import MediaStore
from app.media import integrity
from app.models import Media
from app.models.enums import MediaKind

logger = logging.getLogger(__name__)

THUMB_SIDE = 360  # pixels: sharp at about 6 cm on paper
MAX_THUMBS = 48  # the PDF shows this many; the zip holds every file


@dataclass(slots=True)
class MediaEntry:
    """One file of the case and what its check found."""

    id: str
    kind: str
    content_type: str
    size: int
    attached_at: datetime | None
    check: integrity.MediaCheck
    arcname: str | None = None  # where it sits in the zip; None: not packed
    scratch: Path | None = None  # the checked bytes, until packed
    thumbnail: bytes | None = None  # JPEG, for the PDF

    @property
    def packable(self) -> bool:
        """The bytes are the recorded ones (or nothing was recorded to compare)."""
        return self.check.ok or self.check.problem == "unrecorded"

    def manifest(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "content_type": self.content_type,
            "size": self.size,
            "recorded_sha256": self.check.expected_sha256,
            "actual_sha256": self.check.actual_sha256,
            "check": self.check.problem or "ok",
            "check_text": self.check.describe(),
            "file": self.arcname,
        }


def thumbnail(path: Path) -> bytes | None:
    """A small JPEG of a stored image; None if it does not decode (the list
    still names the file). Pillow's global pixel ceiling applies."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (THUMB_SIDE, THUMB_SIDE))  # JPEG: decode at reduced scale
            img.thumbnail((THUMB_SIDE, THUMB_SIDE))
            out = img.convert("RGB")
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=80)
        return buf.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


async def _read(
    store: MediaStore, m: Media, scratch: Path | None, **derivative: Any
) -> integrity.MediaCheck:
    with ExitStack() as stack:
        sink = stack.enter_context(scratch.open("wb")).write if scratch else None
        return await integrity.verify_object(store, m, sink=sink, **derivative)


async def _poster(store: MediaStore, m: Media, workdir: Path) -> bytes | None:
    """A video's poster frame as a thumbnail, if it is still the recorded one."""
    item = (m.derivatives or {}).get("poster")
    if not item or not item.get("key") or not item.get("sha256"):
        return None
    scratch = workdir / f"{m.id}-poster"
    try:
        found = await _read(store, m, scratch, key=item["key"], expected_sha256=item["sha256"])
        return await asyncio.to_thread(thumbnail, scratch) if found.ok else None
    finally:
        scratch.unlink(missing_ok=True)


async def check(
    store: MediaStore, m: Media, workdir: Path, *, keep: bool, now: datetime
) -> MediaEntry:
    """Check one object, keeping a scratch copy when it is to be packed
    (``keep``) or thumbnailed."""
    image = m.kind is MediaKind.image
    kind = m.kind.value
    ext = m.storage_key.rsplit(".", 1)[-1] if "." in m.storage_key else "bin"
    scratch = workdir / f"{m.id}.{ext}" if (keep or image) else None
    entry = MediaEntry(
        m.id, kind, m.content_type, m.size, m.attached_at, await _read(store, m, scratch)
    )
    if not entry.packable:
        if m.integrity_failed_at is None:
            m.integrity_failed_at = now
        logger.error(
            "dossier: stored media does not match its recorded sha256",
            extra={"media_id": m.id, "problem": entry.check.problem},
        )
    elif m.kind is MediaKind.video:
        entry.thumbnail = await _poster(store, m, workdir)
    if scratch is None:
        return entry
    if entry.packable and image:
        entry.thumbnail = await asyncio.to_thread(thumbnail, scratch)
    if keep and entry.packable:
        entry.scratch, entry.arcname = scratch, f"media/{kind}-{m.id}.{ext}"
    else:
        scratch.unlink(missing_ok=True)
    return entry
