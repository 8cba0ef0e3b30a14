"""Evidence files sent with a console form, stored through the media service
(type from the bytes, EXIF stripped, limits per kind) like ``POST /media``."""

from __future__ import annotations

import logging
from typing import cast

from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile as StarletteUploadFile

from app.console.dependencies import MAX_FILES, ConsoleContext
from app.core.errors import BadRequest, UnsupportedMediaType
from app.core.storage import MediaStore
from app.media import service as media_service
from app.media.dependencies import Uploader
from app.media.sniff import HEAD_BYTES, sniff
from app.models import Media

logger = logging.getLogger("app.console")


async def store_files(
    session: AsyncSession,
    store: MediaStore,
    ctx: ConsoleContext,
    parts: list[str | StarletteUploadFile],
) -> list[Media]:
    """Store every chosen file (an empty file input sends a nameless part: skipped)."""
    files = [p for p in parts if isinstance(p, StarletteUploadFile) and p.filename]
    if len(files) > MAX_FILES:
        raise BadRequest(f"每次最多上传 {MAX_FILES} 个文件")
    stored: list[Media] = []
    try:
        for part in files:
            head = await part.read(HEAD_BYTES)
            await part.seek(0)
            found = sniff(head) if head else None
            if found is None:
                raise UnsupportedMediaType(
                    f"文件“{part.filename}”格式不支持：图片支持 JPG/PNG/WebP/HEIC，"
                    "语音支持 MP3/AAC/M4A/AMR/WAV，视频支持 MP4/MOV，文件支持 PDF"
                )
            uploader = Uploader("staff", ctx.user.id)
            staged = await media_service.stage_upload(
                store,
                ctx.settings,
                uploader=uploader,
                kind=found.kind,
                file=cast(UploadFile, part),
                now=ctx.now,
            )
            try:
                media = await media_service.record_upload(
                    session, ctx.settings, staged, uploader=uploader, now=ctx.now
                )
            except BaseException:
                await staged.writes.discard()
                raise
            stored.append(media)
    except Exception:
        await discard(store, stored)
        raise
    return stored


async def discard(store: MediaStore, media: list[Media]) -> None:
    """Remove stored objects whose rows were rolled back (best effort: the
    media cleanup would not find them later, having no row)."""
    for m in media:
        try:
            await store.delete(m.storage_key)
        except Exception:  # storage down: leave the orphan, say so
            logger.warning("could not delete orphaned evidence", extra={"key": m.storage_key})
