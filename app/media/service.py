"""Uploads into object storage, checked and cleaned on the way in.

Every upload is checked by its content before it is stored at its final key
(app/media/ingest.py): images are decoded and written again without
metadata, voice and video must decode within their limits. Direct uploads
get a presigned POST to a one-time upload key; ``complete`` checks what
arrived there and stores the checked bytes at the final key, which no form
can write: re-posting the form afterwards changes nothing.

A media row's status is decided here only (``mark_ready``, ``servable``,
and ``claimable`` for attaching).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import UploadFile
from sqlalchemy import inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from app.core.storage import MediaStore, PresignedPost, StorageError
from app.media import ingest, integrity
from app.media.dependencies import Uploader
from app.media.schemas import KindLimit, MediaLimits
from app.media.sniff import ALLOWED_TYPES, HEAD_BYTES, sniff
from app.models import Media
from app.models.enums import MediaKind, MediaStatus
from app.moderation import checks as moderation_checks

logger = logging.getLogger(__name__)
CHUNK = 256 * 1024
MAX_PER_COMPLAINT = {MediaKind.image: 9, MediaKind.video: 1, MediaKind.voice: 3}
_KIND_LABEL = {
    MediaKind.image: "图片",
    MediaKind.voice: "语音",
    MediaKind.video: "视频",
    MediaKind.document: "PDF 文件",
}


class MediaNotFound(NotFound):
    code = "media_not_found"


def max_bytes(settings: Settings, kind: MediaKind) -> int:
    return {
        MediaKind.image: settings.media_max_image_bytes,
        MediaKind.voice: settings.media_max_voice_bytes,
        MediaKind.video: settings.media_max_video_bytes,
        MediaKind.document: settings.media_max_document_bytes,
    }[kind]


def limits(settings: Settings) -> MediaLimits:
    def one(kind: MediaKind) -> KindLimit:
        return KindLimit(
            max_bytes=max_bytes(settings, kind),
            content_types=list(ALLOWED_TYPES[kind]),
            max_pixels={
                MediaKind.image: settings.media_max_image_pixels,
                MediaKind.video: settings.media_max_video_pixels,
            }.get(kind),
            max_seconds={
                MediaKind.voice: settings.media_max_voice_seconds,
                MediaKind.video: settings.media_max_video_seconds,
            }.get(kind),
        )

    return MediaLimits(
        image=one(MediaKind.image),
        voice=one(MediaKind.voice),
        video=one(MediaKind.video),
        document=one(MediaKind.document),
        max_per_complaint={k.value: v for k, v in MAX_PER_COMPLAINT.items()},
    )


def too_large(settings: Settings, kind: MediaKind) -> PayloadTooLarge:
    limit = max_bytes(settings, kind)
    return PayloadTooLarge(f"{_KIND_LABEL[kind]}不能超过 {limit // (1024 * 1024)} MB")


# -- status: decided here only -------------------------------------------------


def mark_ready(media: Media, now: datetime) -> None:
    """The upload passed its checks and is stored at its final key."""
    media.status, media.ready_at = MediaStatus.ready, now


def servable(media: Media) -> bool:
    """Whether links to the media may be handed out at all: not to what WeChat
    content security found risky, to anyone (who else may see what is
    checked is decided by ``moderation_checks.staff_may_see``)."""
    return media.status in (MediaStatus.ready, MediaStatus.attached) and (
        media.moderation != "risky"
    )


async def claimable(
    session: AsyncSession,
    media_ids: Sequence[str],
    owner: Uploader,
    *,
    kinds: Collection[MediaKind] | None = None,
    already_in: str | None = None,
) -> list[Media]:
    """The uploads ``owner`` may attach, in the order given: their own, stored,
    not attached elsewhere (rows already attached to ``already_in`` pass).

    One query, and one set of answers for every door: a missing or foreign id
    is 404, an unfinished or used upload 409, a wrong kind 400.
    """
    if len(set(media_ids)) != len(media_ids):
        raise BadRequest("附件重复")
    if not media_ids:
        return []
    found = {
        m.id: m
        for m in (await session.execute(select(Media).where(Media.id.in_(media_ids)))).scalars()
    }
    chosen: list[Media] = []
    for mid in media_ids:
        m = found.get(mid)
        mine = (
            m is not None
            and (m.owner_citizen_id if owner.kind == "citizen" else m.owner_staff_id) == owner.id
        )
        if m is None or not (mine or (already_in and m.attached_to == already_in)):
            raise MediaNotFound(f"附件 {mid} 不存在，请重新上传")
        if kinds is not None and m.kind not in kinds:
            names = "、".join(_KIND_LABEL[k] for k in kinds)
            raise BadRequest(f"附件 {mid} 是{_KIND_LABEL[m.kind]}，这里只能用{names}")
        if not (already_in and m.attached_to == already_in):
            if m.status is MediaStatus.pending:
                raise Conflict("附件尚未上传完成，请稍候再提交")
            if m.status is MediaStatus.attached:
                raise Conflict("附件已用于其他事项，请重新上传")
            if m.integrity_failed_at is not None:
                raise Conflict(f"附件 {mid} 的存储内容与上传时不一致，请重新上传")
            if m.moderation == "risky":
                raise Conflict(f"附件 {mid} 未通过内容安全检测，请更换后再提交")
        chosen.append(m)
    return chosen


def check_case_limits(media: Iterable[Media]) -> None:
    """Per-kind limits for one case (9 images, 1 video, 3 voice), whoever attaches."""
    counts = Counter(m.kind for m in media)
    for kind, limit in MAX_PER_COMPLAINT.items():
        if counts[kind] > limit:
            raise BadRequest(f"每件反映最多 {limit} 个{_KIND_LABEL[kind]}")


def attach(media: Iterable[Media], tag: str, now: datetime, *, forget_owner: bool = False) -> None:
    """``forget_owner``: a resident's upload on a protected case (accusation,
    anonymous) keeps no link to the resident once it belongs to the case."""
    for m in media:
        m.status, m.attached_to, m.attached_at = MediaStatus.attached, tag, now
        m.verified_at = None  # the worker checks its sha256 once it belongs to a case
        if forget_owner:
            m.owner_citizen_id = None


def staff_only(uploader: Uploader, kind: MediaKind) -> None:
    """Documents are disclosure attachments; residents report with pictures, voice or video."""
    if kind is MediaKind.document and uploader.kind != "staff":
        raise UnsupportedMediaType("群众反映请上传图片、语音或视频")


def _owner(uploader: Uploader) -> dict[str, int | None]:
    return {
        "owner_citizen_id": uploader.id if uploader.kind == "citizen" else None,
        "owner_staff_id": uploader.id if uploader.kind == "staff" else None,
    }


_UNSUPPORTED = (
    "不支持的文件格式：图片支持 JPG/PNG/WebP/HEIC，"
    "语音支持 MP3/AAC/M4A/AMR/WAV，视频支持 MP4/MOV，文件支持 PDF"
)


@dataclass(slots=True)
class Staged:
    """A checked file in storage whose row is not written yet: on a refusal
    or a failure after this, ``writes.discard()`` removes what it wrote."""

    media: Media
    writes: ingest.Writes
    source: str | None = None  # a direct upload's one-time key, read from


async def stage_upload(
    store: MediaStore,
    settings: Settings,
    *,
    uploader: Uploader,
    kind: MediaKind,
    file: UploadFile,
    now: datetime,
) -> Staged:
    """Check the file and store it, touching no database: decoding, probing,
    a poster frame and the store's writes take seconds for a video, and a
    session open meanwhile would hold, on SQLite, the process's and the
    database's write lock and every filing behind it."""
    staff_only(uploader, kind)
    limit = max_bytes(settings, kind)
    if file.size is not None and file.size > limit:
        raise too_large(settings, kind)
    head = await file.read(HEAD_BYTES)
    if not head:
        raise BadRequest("文件为空，请重新选择")
    found = sniff(head)
    if found is None:
        raise UnsupportedMediaType(_UNSUPPORTED)
    if found.kind is not kind:
        raise UnsupportedMediaType(
            f"文件内容是{_KIND_LABEL[found.kind]}，与所选类型（{_KIND_LABEL[kind]}）不符"
        )
    media = Media(
        id=uuid.uuid4().hex,
        kind=kind,
        status=MediaStatus.pending,
        content_type=found.content_type,
        storage_key="",
        size=0,
        max_size=limit,
        direct=False,
        created_at=now,
        **_owner(uploader),
    )
    writes = ingest.Writes(store)
    try:
        with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
            await _spool(file, head, spool, limit=limit, settings=settings, kind=kind)
            await ingest.store_checked(
                writes,
                settings,
                media,
                spool,
                content_type=found.content_type,
                extension=found.extension,
            )
        mark_ready(media, now)
    except BaseException:
        await writes.discard()
        raise
    return Staged(media, writes)


async def record_upload(
    session: AsyncSession, settings: Settings, staged: Staged, *, uploader: Uploader, now: datetime
) -> Media:
    """The row of a staged file, and its content check when one is due. The
    caller discards ``staged.writes`` if this or its transaction fails."""
    media = staged.media
    session.add(media)
    await session.flush()
    await moderation_checks.hold_media(
        session, settings, media, citizen_id=_owner(uploader)["owner_citizen_id"], now=now
    )
    return media


async def _spool(
    file: UploadFile,
    head: bytes,
    spool: tempfile.SpooledTemporaryFile[bytes],
    *,
    limit: int,
    settings: Settings,
    kind: MediaKind,
) -> None:
    """The whole upload in a local file, counted against the limit as it is read."""
    await asyncio.to_thread(spool.write, head)
    total = len(head)
    while chunk := await file.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise too_large(settings, kind)
        await asyncio.to_thread(spool.write, chunk)


def _extension(content_type: str) -> str:
    return (
        content_type.rsplit("/", 1)[-1]
        .replace("x-", "")
        .replace("quicktime", "mov")
        .replace("mpeg", "mp3")
    )


async def create_ticket(
    session: AsyncSession,
    store: MediaStore,
    settings: Settings,
    *,
    uploader: Uploader,
    kind: MediaKind,
    content_type: str,
    size: int,
    now: datetime,
) -> tuple[Media, PresignedPost]:
    """A presigned form for one upload to a one-time key under ``uploads/``.

    The form can write that key only; the final key under ``media/`` is
    written by ``complete`` with the bytes it checked.
    """
    staff_only(uploader, kind)
    content_type = content_type.lower().strip()
    if content_type not in ALLOWED_TYPES[kind]:
        raise UnsupportedMediaType(f"{_KIND_LABEL[kind]}不支持 {content_type} 格式")
    if size > max_bytes(settings, kind):
        raise too_large(settings, kind)
    media_id = uuid.uuid4().hex
    ext = _extension(content_type)
    upload_key = f"uploads/{now:%Y/%m/%d}/{media_id}-{secrets.token_hex(8)}.{ext}"
    post = await store.presigned_post(
        upload_key,
        content_type=content_type,
        min_size=1,
        max_size=size,
        expires_seconds=settings.media_ticket_seconds,
        now=now,
    )
    media = Media(
        id=media_id,
        kind=kind,
        status=MediaStatus.pending,
        content_type=content_type,
        storage_key=ingest.object_key(media_id, ext, now),
        upload_key=upload_key,
        size=0,
        max_size=size,
        direct=True,
        created_at=now,
        **_owner(uploader),
    )
    session.add(media)
    await session.flush()
    return media, post


async def ticket_open(session: AsyncSession, upload_key: str) -> bool:
    """Whether a direct-upload form for ``upload_key`` may still write: its
    media row is pending and still expects that key."""
    media_id = upload_key.rsplit("/", 1)[-1][:32]
    media = await session.get(Media, media_id) if len(media_id) == 32 else None
    return (
        media is not None
        and media.status is MediaStatus.pending
        and (media.upload_key == upload_key)
    )


async def get_owned(session: AsyncSession, media_id: str, uploader: Uploader) -> Media:
    media = await session.get(Media, media_id) if len(media_id) == 32 else None
    owner = (
        media.owner_citizen_id
        if media and uploader.kind == "citizen"
        else (media.owner_staff_id if media else None)
    )
    if media is None or owner != uploader.id:
        raise MediaNotFound("文件不存在")
    return media


async def stage_completion(
    store: MediaStore, settings: Settings, media: Media, *, now: datetime
) -> Staged | None:
    """Check what the phone posted to the one-time key and store it for good,
    touching no database (``media`` is a detached copy of the row; see
    ``stage_upload`` for why). None: completed already.

    The upload is read once into a local file; that file is what is checked
    and what is written to the final key (a form re-posted meanwhile cannot
    slip other bytes in). The one-time object is deleted once the row says
    so (``record_completion``).
    """
    if media.status is not MediaStatus.pending:
        return None  # completing twice is harmless; the form's key is no longer read
    source = media.upload_key or media.storage_key  # tickets issued before one-time keys
    info = await store.stat(source)
    if info is None:
        raise Conflict("尚未收到上传的文件，请上传完成后再确认")
    if info.size == 0 or info.size > media.max_size:
        await store.delete(source)
        raise too_large(settings, media.kind) if info.size else BadRequest("上传的文件为空")
    found = sniff(await store.read_head(source, HEAD_BYTES))
    if found is None or found.kind is not media.kind:
        await store.delete(source)
        raise UnsupportedMediaType("上传的文件内容与声明的类型不符，已删除")
    writes = ingest.Writes(store)
    try:
        with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
            try:
                await ingest.download(store, source, spool, limit=media.max_size)
            except ValueError:  # grew past its ticket since stat
                raise too_large(settings, media.kind) from None
            await ingest.store_checked(
                writes,
                settings,
                media,
                spool,
                content_type=found.content_type,
                extension=found.extension,
                # Keys of this check's own: a second ``complete`` of the
                # same upload running beside it may read other bytes (a
                # form posted again meanwhile) and must not overwrite these.
                attempt=uuid.uuid4().hex[:12],
            )
    except StorageError:
        await writes.discard()
        raise  # 503: the upload stays where it is, ``complete`` may be retried
    except BaseException as exc:
        await writes.discard()
        if isinstance(exc, AppError):  # refused: the client must upload again
            await ingest.Writes(store, [source]).discard()
        raise
    return Staged(media, writes, source)


async def record_completion(
    session: AsyncSession, settings: Settings, staged: Staged, *, now: datetime
) -> tuple[Media, bool]:
    """Write what ``stage_completion`` found onto the row, read again under
    its lock; and whether it was written. If another ``complete`` got there
    first the row is answered as it is, and what this one stored is removed:
    its keys are its own (``ingest.object_key``'s ``attempt``), so the
    winner's objects, whose digests the row records, are untouched. If the
    row went, what this one stored is removed too."""
    copy = staged.media
    media = await session.get(Media, copy.id, with_for_update=True, populate_existing=True)
    if media is None:
        await staged.writes.discard()
        raise MediaNotFound("文件不存在")  # as ``get_owned`` says it
    if media.status is not MediaStatus.pending or (
        (media.upload_key or media.storage_key) != staged.source
    ):
        await staged.writes.discard()
        return media, False
    found: Any = inspect(copy)
    for attr in found.attrs:
        if attr.history.has_changes():
            setattr(media, attr.key, attr.value)
    try:
        mark_ready(media, now)
        media.upload_key = None
        await session.flush()
        await moderation_checks.hold_media(
            session, settings, media, citizen_id=media.owner_citizen_id, now=now
        )
    except BaseException:
        await staged.writes.discard()
        raise
    return media, True


async def forget_upload_key(store: MediaStore, staged: Staged, media: Media) -> None:
    """After the row is committed: the one-time object, now copied to its
    final key, is deleted (best effort, as ``Writes.discard``)."""
    if staged.source and staged.source != media.storage_key:
        await ingest.Writes(store, [staged.source]).discard()


@dataclass(frozen=True, slots=True)
class MediaUrls:
    url: str | None  # the original, as uploaded (its sha256 is the evidence)
    play_url: str | None  # what plays in a browser/phone: the original or its copy
    poster_url: str | None


async def link(store: MediaStore, settings: Settings, media: Media, *, now: datetime) -> str | None:
    """A short-lived link to the original, if it may be served and its bytes
    still match the recorded sha256 (app/media/integrity.py). With storage
    unreachable there is nothing to link to: no link, and the page around it
    (a case, a disclosure) still answers."""
    if not servable(media):
        return None
    try:
        if not await integrity.unchanged(store, media, now=now):
            return None
    except StorageError:
        logger.warning("media link withheld: storage unreachable", extra={"media_id": media.id})
        return None
    return await store.presigned_get(
        media.storage_key, expires_seconds=settings.media_link_seconds, now=now
    )


async def urls(store: MediaStore, settings: Settings, media: Media, *, now: datetime) -> MediaUrls:
    """The original's link, what to play, and the poster frame."""
    url = await link(store, settings, media, now=now)
    if url is None:
        return MediaUrls(None, None, None)

    async def derived(name: str) -> str | None:
        item = (media.derivatives or {}).get(name)
        try:
            if not item or not await integrity.derivative_unchanged(store, media, name):
                return None
        except StorageError:
            return None
        return await store.presigned_get(
            item["key"], expires_seconds=settings.media_link_seconds, now=now
        )

    poster = await derived("poster")
    if media.kind not in (MediaKind.voice, MediaKind.video):
        return MediaUrls(url, url, poster)
    play = url if media.derive_state is None else await derived("play")
    return MediaUrls(url, play, poster)


def object_keys(media: Media) -> list[str]:
    """Every object a media row owns: the original, its one-time upload key,
    its derivatives (poster, playable copy)."""
    keys = [media.storage_key, media.upload_key]
    keys += [str(d["key"]) for d in (media.derivatives or {}).values() if d.get("key")]
    return [k for k in keys if k]


async def discard(store: MediaStore, media: Iterable[Media]) -> None:
    """Delete the objects of rows that will not be kept (e.g. a refused form)."""
    await ingest.Writes(store, [k for m in media for k in object_keys(m)]).discard()


async def cleanup(
    session: AsyncSession, store: MediaStore, *, now: datetime, grace: timedelta
) -> int:
    """Delete media never attached within the grace period (objects first)."""
    stmt = (
        select(Media)
        .where(
            or_(Media.status == MediaStatus.pending, Media.status == MediaStatus.ready),
            Media.created_at < now - grace,
        )
        .limit(1000)
    )
    stale = (await session.execute(stmt)).scalars().all()
    await moderation_checks.forget_media(session, [m.id for m in stale])
    for media in stale:
        for key in object_keys(media):
            await store.delete(key)
        await session.delete(media)
    await session.flush()
    return len(stale)
