"""Uploads into object storage, checked and cleaned on the way in.

Voice and video stream straight through with a running size check. Images
are decoded and written again without metadata (bounded by the image limit).
Direct uploads get a presigned POST, then ``complete`` checks the stored
object itself before it can be attached.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from datetime import datetime, timedelta

from fastapi import UploadFile
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType
from app.core.storage import MediaStore, PresignedPost
from app.media.dependencies import Uploader
from app.media.images import clean_image
from app.media.schemas import KindLimit, MediaLimits
from app.media.sniff import ALLOWED_TYPES, HEAD_BYTES, sniff
from app.models import Media
from app.models.enums import MediaKind, MediaStatus

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
            max_bytes=max_bytes(settings, kind), content_types=list(ALLOWED_TYPES[kind])
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
        chosen.append(m)
    return chosen


def check_case_limits(media: Iterable[Media]) -> None:
    """Per-kind limits for one case (9 images, 1 video, 3 voice), whoever attaches."""
    counts = Counter(m.kind for m in media)
    for kind, limit in MAX_PER_COMPLAINT.items():
        if counts[kind] > limit:
            raise BadRequest(f"每件反映最多 {limit} 个{_KIND_LABEL[kind]}")


def attach(media: Iterable[Media], tag: str, now: datetime) -> None:
    for m in media:
        m.status, m.attached_to, m.attached_at = MediaStatus.attached, tag, now


def staff_only(uploader: Uploader, kind: MediaKind) -> None:
    """Documents are disclosure attachments; residents report with pictures, voice or video."""
    if kind is MediaKind.document and uploader.kind != "staff":
        raise UnsupportedMediaType("群众反映请上传图片、语音或视频")


def _key(media_id: str, ext: str, now: datetime) -> str:
    return f"media/{now:%Y/%m/%d}/{media_id}.{ext}"


def _owner(uploader: Uploader) -> dict[str, int | None]:
    return {
        "owner_citizen_id": uploader.id if uploader.kind == "citizen" else None,
        "owner_staff_id": uploader.id if uploader.kind == "staff" else None,
    }


async def upload(
    session: AsyncSession,
    store: MediaStore,
    settings: Settings,
    *,
    uploader: Uploader,
    kind: MediaKind,
    file: UploadFile,
    now: datetime,
) -> Media:
    staff_only(uploader, kind)
    limit = max_bytes(settings, kind)
    if file.size is not None and file.size > limit:
        raise too_large(settings, kind)
    head = await file.read(HEAD_BYTES)
    if not head:
        raise BadRequest("文件为空，请重新选择")
    found = sniff(head)
    if found is None:
        raise UnsupportedMediaType(
            "不支持的文件格式：图片支持 JPG/PNG/WebP/HEIC，"
            "语音支持 MP3/AAC/M4A/AMR/WAV，视频支持 MP4/MOV，文件支持 PDF"
        )
    if found.kind is not kind:
        raise UnsupportedMediaType(
            f"文件内容是{_KIND_LABEL[found.kind]}，与所选类型（{_KIND_LABEL[kind]}）不符"
        )
    media_id = uuid.uuid4().hex
    if kind is MediaKind.image:
        data, ctype, ext, size = await _clean_uploaded_image(file, head, limit, settings)
        key = _key(media_id, ext, now)
        stored = await store.put_stream(key, _once(data), content_type=ctype)
        width, height = size
    else:
        ctype, key, width, height = (
            found.content_type,
            _key(media_id, found.extension, now),
            None,
            None,
        )
        try:
            stored = await store.put_stream(
                key, _limited(head, file, limit, settings, kind), content_type=ctype
            )
        except PayloadTooLarge:
            await store.delete(key)
            raise
    media = Media(
        id=media_id,
        kind=kind,
        status=MediaStatus.ready,
        content_type=ctype,
        storage_key=key,
        size=stored.size,
        max_size=limit,
        sha256=stored.sha256,
        width=width,
        height=height,
        direct=False,
        created_at=now,
        ready_at=now,
        **_owner(uploader),
    )
    session.add(media)
    try:
        await session.flush()
    except Exception:
        await store.delete(key)
        raise
    return media


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _limited(
    head: bytes, file: UploadFile, limit: int, settings: Settings, kind: MediaKind
) -> AsyncIterator[bytes]:
    total = len(head)
    yield head
    while chunk := await file.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise too_large(settings, kind)
        yield chunk


async def _clean_uploaded_image(
    file: UploadFile, head: bytes, limit: int, settings: Settings
) -> tuple[bytes, str, str, tuple[int, int]]:
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
        spool.write(head)
        total = len(head)
        while chunk := await file.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise too_large(settings, MediaKind.image)
            spool.write(chunk)
        spool.seek(0)
        return await asyncio.to_thread(clean_image, spool)


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
    staff_only(uploader, kind)
    content_type = content_type.lower().strip()
    if content_type not in ALLOWED_TYPES[kind]:
        raise UnsupportedMediaType(f"{_KIND_LABEL[kind]}不支持 {content_type} 格式")
    if size > max_bytes(settings, kind):
        raise too_large(settings, kind)
    media_id = uuid.uuid4().hex
    ext = (
        content_type.rsplit("/", 1)[-1]
        .replace("x-", "")
        .replace("quicktime", "mov")
        .replace("mpeg", "mp3")
    )
    key = _key(media_id, ext, now)
    post = await store.presigned_post(
        key,
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
        storage_key=key,
        size=0,
        max_size=size,
        direct=True,
        created_at=now,
        **_owner(uploader),
    )
    session.add(media)
    await session.flush()
    return media, post


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


async def complete(
    session: AsyncSession,
    store: MediaStore,
    settings: Settings,
    *,
    uploader: Uploader,
    media_id: str,
    now: datetime,
) -> Media:
    media = await get_owned(session, media_id, uploader)
    if media.status is not MediaStatus.pending:
        return media  # completing twice is harmless
    info = await store.stat(media.storage_key)
    if info is None:
        raise Conflict("尚未收到上传的文件，请上传完成后再确认")
    if info.size == 0 or info.size > media.max_size:
        await store.delete(media.storage_key)
        raise too_large(settings, media.kind) if info.size else BadRequest("上传的文件为空")
    head = await store.read_head(media.storage_key, HEAD_BYTES)
    found = sniff(head)
    if found is None or found.kind is not media.kind:
        await store.delete(media.storage_key)
        raise UnsupportedMediaType("上传的文件内容与声明的类型不符，已删除")
    media.size, media.content_type = info.size, found.content_type
    if media.kind is MediaKind.image:
        # Direct uploads arrive with their EXIF: clean them the same way.
        raw = b"".join([c async for c in store.iter_object(media.storage_key)])
        data, ctype, _ext, (w, h) = await asyncio.to_thread(clean_image, io.BytesIO(raw))
        stored = await store.put_stream(media.storage_key, _once(data), content_type=ctype)
        media.size, media.content_type, media.width, media.height = stored.size, ctype, w, h
        media.sha256 = stored.sha256
    media.status, media.ready_at = MediaStatus.ready, now
    await session.flush()
    return media


async def link(store: MediaStore, settings: Settings, media: Media, *, now: datetime) -> str | None:
    if media.status is MediaStatus.pending:
        return None
    return await store.presigned_get(
        media.storage_key, expires_seconds=settings.media_link_seconds, now=now
    )


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
    for media in stale:
        await store.delete(media.storage_key)
        await session.delete(media)
    await session.flush()
    return len(stale)
