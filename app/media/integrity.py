"""Is a stored object still the one whose sha256 was recorded?

``verify_object`` reads the whole object and compares its sha256: the check
for an auditor (the dossier, an export, ``ydt media verify``) and the
worker's check of every newly attached file (app/media/maintenance.py).

``unchanged`` is the check on every link: the backend's version tag (S3 ETag;
for a folder, inode/ctime/size) recorded when the sha256 was last verified
must still match, which costs one HEAD. Any write to the object changes its
tag, so a matching tag vouches for the hash; a different tag (a restored
backup, a copied bucket) triggers a full ``verify_object`` and, if the bytes
still match, the new tag is recorded. A mismatch sets
``Media.integrity_failed_at``, and flagged media cannot be attached.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, inspect, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.storage import MediaStore
from app.media import ingest
from app.models import Media

logger = logging.getLogger(__name__)

Problem = Literal["missing", "mismatch", "unrecorded"]


@dataclass(frozen=True, slots=True)
class MediaCheck:
    """The answer for one object; truthy when the bytes match the record."""

    media_id: str
    key: str
    expected_sha256: str | None
    actual_sha256: str | None
    size: int | None
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __bool__(self) -> bool:
        return self.ok

    def describe(self) -> str:
        """A line for a report (Chinese, as the dossier prints it)."""
        if self.problem is None:
            return "校验一致"
        if self.problem == "missing":
            return "文件缺失"
        if self.problem == "unrecorded":
            return "未记录哈希，无法校验"
        return f"哈希不符：记录 {self.expected_sha256}，实际 {self.actual_sha256}"


async def verify_object(
    store: MediaStore,
    media: Media,
    *,
    key: str | None = None,
    expected_sha256: str | None = None,
    sink: Callable[[bytes], object] | None = None,
) -> MediaCheck:
    """Read the whole object and compare its sha256 with the recorded one.

    By default the original (``media.storage_key`` against ``media.sha256``);
    ``key``/``expected_sha256`` check a derivative instead. ``sink`` receives
    every chunk as it is read (e.g. ``zip_member.write``), so packing and
    checking are one read; on a failed check the caller discards what it
    wrote. Storage outages raise ``StorageError`` (503): an unreachable
    store is not a mismatch.
    """
    key = key or media.storage_key
    expected = expected_sha256 if key != media.storage_key else media.sha256
    if await store.stat(key) is None:
        return MediaCheck(media.id, key, expected, None, None, "missing")
    sha = hashlib.sha256()
    size = 0
    async for chunk in store.iter_object(key):
        sha.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink(chunk)
    actual = sha.hexdigest()
    problem: Problem | None = None
    if expected is None:
        problem = "unrecorded"
    elif actual != expected:
        problem = "mismatch"
    return MediaCheck(media.id, key, expected, actual, size, problem)


async def unchanged(store: MediaStore, media: Media, *, now: datetime) -> bool:
    """The cheap check before a link is handed out or media is attached.

    Records ``integrity_failed_at`` on the row when the bytes no longer
    match (the request's transaction keeps it); logs the media id only.
    """
    info = await store.stat(media.storage_key)
    if info is not None and media.etag and info.etag == media.etag and info.size == media.size:
        return True
    check = await verify_object(store, media) if info is not None else None
    if check is not None and check.ok:
        media.etag = info.etag if info is not None else None
        return True
    if check is not None and check.problem == "unrecorded":
        # Rows from before sha256 was recorded for every upload: sealed on
        # first use, from here on held to it.
        media.sha256, media.etag = check.actual_sha256, info.etag if info is not None else None
        logger.warning("sealed media that had no recorded sha256", extra={"media_id": media.id})
        return True
    if media.integrity_failed_at is None:
        media.integrity_failed_at = now
    logger.error(
        "stored media no longer matches its recorded sha256",
        extra={"media_id": media.id, "problem": check.problem if check else "missing"},
    )
    return False


async def derivative_unchanged(store: MediaStore, media: Media, name: str) -> bool:
    """``unchanged`` for a derivative recorded in ``media.derivatives[name]``."""
    item = (media.derivatives or {}).get(name)
    if not item:
        return False
    info = await store.stat(item["key"])
    if info is not None and info.etag == item.get("etag") and info.size == item.get("size"):
        return True
    if info is not None:
        check = await verify_object(
            store, media, key=item["key"], expected_sha256=item.get("sha256")
        )
        if check.ok:
            media.derivatives = {**(media.derivatives or {}), name: {**item, "etag": info.etag}}
            return True
    logger.error(
        "stored media derivative no longer matches its recorded sha256",
        extra={"media_id": media.id, "derivative": name},
    )
    return False


# What reading a media item may learn about its stored bytes and keep on the
# row (``unchanged``, ``derivative_unchanged``): a refreshed etag (of the
# original, or of a derivative), a sha256 sealed on first use, the time its
# bytes were first found changed.
_FOUND = ("etag", "sha256", "integrity_failed_at", "derivatives")


def take_found(session: AsyncSession, media: Media) -> dict[str, Any]:
    """What a read of ``media`` found that the row should keep, taken out of
    the read session (which refuses to write it) for ``record_found``."""
    state: Any = inspect(media)
    found = {k: getattr(media, k) for k in _FOUND if state.attrs[k].history.has_changes()}
    if "derivatives" in found:  # only the entries this read changed (merge_derivatives)
        read = state.attrs["derivatives"].history.deleted
        before = (read[0] if read else None) or {}
        found["derivatives"] = {
            k: v for k, v in (found["derivatives"] or {}).items() if before.get(k) != v
        }
    if found:
        session.expunge(media)
    return found


async def record_found(session: AsyncSession, media_id: str, found: dict[str, Any]) -> None:
    """Keep what a read found, in a writer session of its own: the read itself
    (the store's stat, perhaps a hash of the whole object) then holds no write
    lock, and the writer's is taken only when there is something to keep.
    A first failure's time and a sealed sha256 are kept if another read wrote
    them meanwhile, and a derivative's entry is merged into the row's entries
    as they are now (``ingest.merge_derivatives``)."""
    values: dict[str, Any] = dict(found)
    changed = values.pop("derivatives", None)
    if changed and not await ingest.merge_derivatives(session, media_id, changed):
        return  # the item went away meanwhile
    if not values:
        return
    for column in ("sha256", "integrity_failed_at"):
        if column in values:
            values[column] = func.coalesce(getattr(Media, column), values[column])
    await session.execute(
        update(Media)
        .where(Media.id == media_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
