"""Media work outside requests: the worker's playable copies and integrity
checks, and the orphan sweep of ``ydt media cleanup``.

Each function gets a sessionmaker and opens its own short transactions (the
work between them, transcoding and hashing, can take minutes). Several
workers may run: a row is claimed by a conditional UPDATE that only one of
them can win, with a lease (``derive_after``) after which a crashed
worker's claim expires.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.storage import MediaStore
from app.media import ingest, integrity, transcode
from app.media.service import object_keys
from app.models import Media
from app.models.enums import MediaKind, MediaStatus
from app.models.media import DeriveState

logger = logging.getLogger(__name__)
LEASE = timedelta(minutes=30)
RETRY = timedelta(minutes=5)
ORPHAN_AGE = timedelta(hours=1)
_MEDIA_ID = re.compile(r"^([0-9a-f]{32})")


@dataclass
class MediaTick:
    derived: int = 0
    derive_failed: int = 0
    verified: int = 0
    mismatched: int = 0


async def tick(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
    batch: int = 5,
) -> MediaTick:
    """One worker tick: a few playable copies, then checks of newly attached media."""
    result = MediaTick()
    for media_id in await _due_derivations(sessionmaker, now, batch):
        ok = await derive_one(sessionmaker, store, settings, media_id, now=now)
        if ok is True:
            result.derived += 1
        elif ok is False:
            result.derive_failed += 1
    checked = await verify_attached(sessionmaker, store, now=now, batch=batch * 4)
    result.verified, result.mismatched = checked
    return result


async def _due_derivations(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, batch: int
) -> list[str]:
    async with sessionmaker() as s:
        rows = await s.execute(
            select(Media.id)
            .where(
                Media.derive_state == DeriveState.pending,
                Media.status != MediaStatus.pending,
                or_(Media.derive_after.is_(None), Media.derive_after <= now),
            )
            .order_by(Media.created_at)
            .limit(batch)
        )
        return list(rows.scalars())


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession], media_id: str, now: datetime
) -> Media | None:
    async with sessionmaker() as s:
        won = await s.execute(
            update(Media)
            .where(
                Media.id == media_id,
                Media.derive_state == DeriveState.pending,
                or_(Media.derive_after.is_(None), Media.derive_after <= now),
            )
            .values(derive_after=now + LEASE, derive_attempts=Media.derive_attempts + 1)
        )
        if getattr(won, "rowcount", 0) != 1:
            return None  # another worker has it
        await s.commit()
        media = await s.get(Media, media_id)
        if media is not None:
            s.expunge(media)
        return media


async def derive_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: MediaStore,
    settings: Settings,
    media_id: str,
    *,
    now: datetime,
) -> bool | None:
    """Make the playable copy of one voice clip or video. True when made,
    False when it failed (to be retried, or given up), None when not ours."""
    media = await _claim(sessionmaker, media_id, now)
    if media is None:
        return None
    suffix, content_type = (
        ("play.m4a", "audio/mp4") if media.kind is MediaKind.voice else ("play.mp4", "video/mp4")
    )
    key = ingest.object_key(media.id, suffix, media.created_at)
    writes = ingest.Writes(store)
    try:
        with tempfile.TemporaryDirectory(prefix="ydt-derive-") as folder:
            original, copy = Path(folder) / "original", Path(folder) / "copy"
            with original.open("wb") as fh:
                sha = await ingest.download(store, media.storage_key, fh, limit=media.max_size)
            if sha != media.sha256:
                await _record(sessionmaker, media.id, integrity_failed_at=now)
                raise RuntimeError("original does not match its sha256; no copy made from it")
            convert = (
                transcode.voice_to_m4a if media.kind is MediaKind.voice else transcode.video_to_mp4
            )
            await asyncio.to_thread(convert, original, copy, content_type=media.content_type)
            with copy.open("rb") as fh:
                stored = await writes.put(key, ingest.file_chunks(fh), content_type)
        if not await _record_copy(sessionmaker, media.id, ingest.entry(stored, content_type)):
            await writes.discard()  # the row went away meanwhile (cleanup)
            return None
    except Exception:
        await writes.discard()
        give_up = media.derive_attempts >= settings.media_derive_attempts
        logger.exception("playable copy failed", extra={"media_id": media.id, "giving_up": give_up})
        await _record(
            sessionmaker,
            media.id,
            derive_state=DeriveState.failed if give_up else DeriveState.pending,
            derive_after=None if give_up else now + RETRY,
        )
        return False
    return True


async def _record_copy(
    sessionmaker: async_sessionmaker[AsyncSession], media_id: str, play: dict[str, Any]
) -> bool:
    """The playable copy beside the derivatives other writers added while it
    was made (``ingest.merge_derivatives``)."""
    async with sessionmaker() as s:
        kept = await ingest.merge_derivatives(
            s, media_id, {"play": play}, derive_state=DeriveState.done
        )
        await s.commit()
        return kept


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession], media_id: str, **values: Any
) -> bool:
    async with sessionmaker() as s:
        done = await s.execute(update(Media).where(Media.id == media_id).values(**values))
        await s.commit()
        return bool(getattr(done, "rowcount", 0))


async def verify_attached(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: MediaStore,
    *,
    now: datetime,
    batch: int = 20,
) -> tuple[int, int]:
    """Full sha256 check of media attached since their last check (``attach``
    clears ``verified_at``). Returns (checked, mismatched)."""
    async with sessionmaker() as s:
        due = (
            (
                await s.execute(
                    select(Media)
                    .where(Media.status == MediaStatus.attached, Media.verified_at.is_(None))
                    .order_by(Media.attached_at)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        for m in due:
            s.expunge(m)
    mismatched = 0
    for media in due:
        check = await integrity.verify_object(store, media)
        values: dict[str, Any] = {"verified_at": now}
        if check.problem == "unrecorded":
            values["sha256"] = check.actual_sha256  # an old row, sealed on first check
        elif not check.ok:
            mismatched += 1
            values["integrity_failed_at"] = media.integrity_failed_at or now
            logger.error(
                "attached media no longer matches its recorded sha256",
                extra={"media_id": media.id, "problem": check.problem},
            )
        await _record(sessionmaker, media.id, **values)
    return len(due), mismatched


async def sweep_orphans(
    session: AsyncSession, store: MediaStore, *, now: datetime, days: int = 2
) -> int:
    """Delete objects under ``media/`` and ``uploads/`` of the last ``days``
    days that no media row owns: a write a frozen server applied after the
    request gave up (503), a form re-posted after ``complete``, a crash
    between a write and its commit. Objects younger than an hour are left
    alone (their request may still be committing)."""
    prefixes = [
        f"{root}/{now - timedelta(days=d):%Y/%m/%d}/"
        for d in range(days)
        for root in ("media", "uploads")
    ]
    deleted = 0
    for prefix in prefixes:
        objects = await store.list_prefix(prefix)
        ids = {
            m.group(1)
            for o in objects
            if (m := _MEDIA_ID.match(o.key.rsplit("/", 1)[-1])) is not None
        }
        owned: set[str] = set()
        if ids:
            rows = await session.execute(select(Media).where(Media.id.in_(ids)))
            owned = {k for media in rows.scalars() for k in object_keys(media)}
        for o in objects:
            young = o.last_modified is not None and o.last_modified > now - ORPHAN_AGE
            # A name that is not "<media id>..." is not ours to judge.
            ours = _MEDIA_ID.match(o.key.rsplit("/", 1)[-1]) is not None
            if ours and o.key not in owned and not young:
                await store.delete(o.key)
                deleted += 1
    if deleted:
        logger.info("deleted orphan media objects", extra={"count": deleted})
    return deleted


async def verify_all(
    session: AsyncSession, store: MediaStore
) -> tuple[int, list[integrity.MediaCheck]]:
    """``ydt media verify``: every stored original against its sha256.
    Returns (checked, problems); read-only."""
    problems: list[integrity.MediaCheck] = []
    checked = 0
    rows = await session.stream_scalars(
        select(Media).where(Media.status != MediaStatus.pending).order_by(Media.created_at)
    )
    async for media in rows:
        check = await integrity.verify_object(store, media)
        checked += 1
        if not check.ok:
            problems.append(check)
    return checked, problems
