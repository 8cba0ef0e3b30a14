"""``ydt worker``'s share of content security: prepare, submit and retry.

Each round:
1. voice and video uploads are cut into what WeChat can judge (key frames as
   JPEG, the sound as .m4a; app/moderation/frames.py), stored beside the
   original as derivatives (so cleanup removes them with it);
2. due parts are submitted to mediaCheckAsync v2 with a link WeChat can fetch
   for an hour; the verdict comes back by push (app/moderation/router.py);
3. a part whose push has not come within ``YDT_CONTENT_CHECK_RESULT_MINUTES``
   is submitted again;
4. texts WeChat could not judge at filing are checked again.
A failure (WeChat or storage unreachable) backs off exponentially from
``YDT_CONTENT_CHECK_BACKOFF_SECONDS``; after ``YDT_CONTENT_CHECK_MAX_ATTEMPTS``
the part is handed to staff review rather than left waiting for ever.
Rows are claimed by a conditional UPDATE with a lease, so several workers can run.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.errors import BadGateway, ServiceUnavailable
from app.core.storage import MediaStore, StorageError
from app.media import ingest
from app.models import Complaint, ComplaintEvent, ContentCheck, Media, Rating
from app.models.enums import MediaKind
from app.models.moderation import CheckState, Verdict
from app.moderation import checks, frames, service
from app.wechat import client as wechat

logger = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
LINK_SECONDS = 3600  # WeChat fetches within minutes; the link outlives the wait
_RETRYABLE = (ServiceUnavailable, BadGateway, StorageError, wechat.WeChatNotConfigured)


@dataclass
class ModerationTick:
    prepared: int = 0
    submitted: int = 0
    texts: int = 0
    failed: int = 0


async def tick(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: wechat.WeChatClient,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
    batch: int = 20,
) -> ModerationTick:
    result = ModerationTick()
    if not settings.content_security:
        return result
    await _expire_unanswered(sessionmaker, settings, now=now)
    for check_id in await _due(sessionmaker, now, batch, kinds=(checks.PREPARE,)):
        ok = await _prepare(sessionmaker, store, settings, check_id, now=now)
        result.prepared += ok is True
        result.failed += ok is False
    for check_id in await _due(sessionmaker, now, batch, kinds=("image", "audio")):
        ok = await _submit(sessionmaker, client, store, settings, check_id, now=now)
        result.submitted += ok is True
        result.failed += ok is False
    for check_id in await _due(sessionmaker, now, batch, kinds=("text",)):
        ok = await _recheck_text(sessionmaker, client, settings, check_id, now=now)
        result.texts += ok is True
        result.failed += ok is False
    return result


async def _due(
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    batch: int,
    *,
    kinds: tuple[str, ...],
) -> list[str]:
    async with sessionmaker() as s:
        rows = await s.execute(
            select(ContentCheck.id)
            .where(
                ContentCheck.state == CheckState.due,
                ContentCheck.kind.in_(kinds),
                or_(ContentCheck.next_at.is_(None), ContentCheck.next_at <= now),
            )
            .order_by(ContentCheck.created_at)
            .limit(batch)
        )
        return list(rows.scalars())


async def _claim(s: AsyncSession, check_id: str, now: datetime) -> ContentCheck | None:
    """Take one due row for this worker (lease ``LEASE``), counting the attempt."""
    won = await s.execute(
        update(ContentCheck)
        .where(
            ContentCheck.id == check_id,
            ContentCheck.state == CheckState.due,
            or_(ContentCheck.next_at.is_(None), ContentCheck.next_at <= now),
        )
        .values(next_at=now + LEASE, attempts=ContentCheck.attempts + 1)
    )
    if getattr(won, "rowcount", 0) != 1:
        return None
    await s.commit()
    return await s.get(ContentCheck, check_id)


async def _let_go(s: AsyncSession) -> None:
    """End the transaction that read the claimed row before the slow part
    (cutting a video, a call to WeChat), keeping the loaded rows (the session
    does not expire them on commit); the outcome is written in a new one.

    On SQLite every writer's transaction holds the database's write lock, so
    a transaction left open across seconds of ffmpeg or a WeChat timeout
    held every resident's filing and every cadre's action for as long. The
    row stays ours by its lease (``LEASE``), as it did on PostgreSQL, where
    the read took no lock on it either."""
    await s.commit()


def _backoff(settings: Settings, attempts: int) -> timedelta:
    return timedelta(seconds=settings.content_check_backoff_seconds * 2 ** min(attempts - 1, 12))


async def _failed(
    s: AsyncSession, check: ContentCheck, settings: Settings, now: datetime, *, final: bool = False
) -> None:
    """Back off, or after the last attempt hand the part to staff review."""
    if final or check.attempts >= settings.content_check_max_attempts:
        service.decide(check, Verdict.review, None, now)
        logger.warning("content check given up: staff review", extra={"target": check.target})
    else:
        check.state, check.next_at = CheckState.due, now + _backoff(settings, check.attempts)
    await _refresh(s, check)
    await s.commit()


async def _refresh(s: AsyncSession, check: ContentCheck) -> None:
    await s.flush()
    if check.target.startswith("media:"):
        await service.refresh_media(s, check.target.removeprefix("media:"))
    elif check.complaint_id:
        await service.refresh_complaint(s, check.complaint_id)


async def _expire_unanswered(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> None:
    """Submitted parts whose push never came: due again (a late push for the
    old trace id is then unknown and ignored)."""
    async with sessionmaker() as s:
        await s.execute(
            update(ContentCheck)
            .where(ContentCheck.state == CheckState.submitted, ContentCheck.next_at <= now)
            .values(state=CheckState.due, trace_id=None, next_at=now)
        )
        await s.commit()


async def _prepare(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: MediaStore,
    settings: Settings,
    check_id: str,
    *,
    now: datetime,
) -> bool | None:
    """Cut a voice clip or video into the parts WeChat can judge."""
    async with sessionmaker() as s:
        check = await _claim(s, check_id, now)
        if check is None:
            return None
        media = await s.get(Media, check.target.removeprefix("media:"))
        if media is None:
            await s.delete(check)
            await s.commit()
            return None
        await _let_go(s)
        writes = ingest.Writes(store)
        try:
            parts = await _make_parts(store, writes, settings, media)
        except Exception:
            await writes.discard()
            logger.exception("content check parts failed", extra={"media_id": media.id})
            await _failed(s, check, settings, now)
            return False
        cut: dict[str, object] = {}
        for part, key, kind, entry in parts:
            if entry is not None:
                cut[f"check-{part}"] = entry
            s.add(
                checks.new_check(
                    target=check.target,
                    kind=kind,
                    part=part,
                    object_key=key,
                    openid_sealed=check.openid_sealed,  # same target: the seal opens
                    now=now,
                )
            )
        # Beside what another worker recorded while the parts were cut (the
        # playable copy): the row's entries as they are now, not as read.
        if not await ingest.merge_derivatives(s, media.id, cut):
            await s.rollback()  # the item went away meanwhile; so do its parts
            await writes.discard()
            return None
        await s.delete(check)
        await s.flush()
        if not parts:  # nothing WeChat can read (no frame, no sound): staff look
            s.add(
                checks.new_check(
                    target=check.target,
                    kind="audio",
                    part="none",
                    openid_sealed=None,
                    verdict=Verdict.review,
                    now=now,
                )
            )
            await s.flush()
        await service.refresh_media(s, media.id)
        await s.commit()
        return True


async def _make_parts(
    store: MediaStore, writes: ingest.Writes, settings: Settings, media: Media
) -> list[tuple[str, str, str, dict[str, object] | None]]:
    """(part, object key, kind, derivative entry or None when the original is used)."""
    out: list[tuple[str, str, str, dict[str, object] | None]] = []
    if media.kind is MediaKind.voice and media.content_type in frames.AUDIO_AS_IS:
        return [("audio", media.storage_key, "audio", None)]
    with tempfile.TemporaryDirectory(prefix="ydt-check-") as folder:
        original, sound = Path(folder) / "original", Path(folder) / "sound.m4a"
        with original.open("wb") as fh:
            sha = await ingest.download(store, media.storage_key, fh, limit=media.max_size)
        if media.sha256 and sha != media.sha256:
            raise RuntimeError("original does not match its sha256; not submitted")
        if media.kind is MediaKind.video:
            shots = await asyncio.to_thread(
                frames.key_frames,
                original,
                content_type=media.content_type,
                count=settings.content_check_video_frames,
            )
            for i, jpeg in enumerate(shots):
                key = ingest.object_key(media.id, f"check-frame-{i}.jpg", media.created_at)
                stored = await writes.put(key, ingest.once(jpeg), "image/jpeg")
                out.append((f"frame-{i}", key, "image", ingest.entry(stored, "image/jpeg")))
            if not await asyncio.to_thread(
                frames.has_audio, original, content_type=media.content_type
            ):
                return out
        await asyncio.to_thread(
            frames.audio_track, original, sound, content_type=media.content_type
        )
        key = ingest.object_key(media.id, "check-audio.m4a", media.created_at)
        with sound.open("rb") as fh:
            stored = await writes.put(key, ingest.file_chunks(fh), "audio/mp4")
        out.append(("audio", key, "audio", ingest.entry(stored, "audio/mp4")))
    return out


async def _submit(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: wechat.WeChatClient,
    store: MediaStore,
    settings: Settings,
    check_id: str,
    *,
    now: datetime,
) -> bool | None:
    async with sessionmaker() as s:
        check = await _claim(s, check_id, now)
        if check is None:
            return None
        openid = checks.unseal_openid(check)
        if openid is None or check.object_key is None:
            await _failed(s, check, settings, now, final=True)
            return False
        await _let_go(s)
        try:
            url = await store.presigned_get(check.object_key, expires_seconds=LINK_SECONDS, now=now)
            trace = await wechat.media_check_async(
                client,
                openid=openid,
                media_url=url,
                media_type=wechat.MEDIA_IMAGE if check.kind == "image" else wechat.MEDIA_AUDIO,
                scene=wechat.SCENE_FORUM,
                now=now,
            )
        except wechat.ContentCheckRefused:
            await _failed(s, check, settings, now, final=True)
            return False
        except _RETRYABLE as exc:
            logger.warning(
                "media check not submitted", extra={"target": check.target, "error": repr(exc)}
            )
            await _failed(s, check, settings, now)
            return False
        check.state, check.trace_id, check.submitted_at = CheckState.submitted, trace, now
        check.next_at = now + timedelta(minutes=settings.content_check_result_minutes)
        await s.commit()
        return True


async def _text_of(s: AsyncSession, target: str) -> str | None:
    kind, _, ident = target.partition(":")
    if kind == "complaint":
        c = await s.get(Complaint, ident)
        return c.content if c else None
    if kind in ("event", "rating") and ident.isdecimal() and len(ident) < 12:
        row = await s.get(ComplaintEvent if kind == "event" else Rating, int(ident))
        if isinstance(row, ComplaintEvent):
            return row.note
        return row.comment if isinstance(row, Rating) else None
    return None


async def _recheck_text(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: wechat.WeChatClient,
    settings: Settings,
    check_id: str,
    *,
    now: datetime,
) -> bool | None:
    async with sessionmaker() as s:
        check = await _claim(s, check_id, now)
        if check is None:
            return None
        openid, text = checks.unseal_openid(check), await _text_of(s, check.target)
        if openid is None or not text:
            await _failed(s, check, settings, now, final=not text)
            return False
        scene = wechat.SCENE_COMMENT if check.target.startswith("rating:") else wechat.SCENE_FORUM
        await _let_go(s)
        try:
            found = await wechat.msg_sec_check(
                client,
                openid=openid,
                content=text,
                scene=scene,
                now=now,
                wait_seconds=settings.content_check_timeout_seconds,
            )
        except wechat.ContentCheckRefused:
            await _failed(s, check, settings, now, final=True)
            return False
        except _RETRYABLE:
            await _failed(s, check, settings, now)
            return False
        # Already written: a risky verdict now flags the case instead of refusing.
        service.decide(check, Verdict(found.suggest), found.label, now)
        await _refresh(s, check)
        await s.commit()
        return True
