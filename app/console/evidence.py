"""Evidence files sent with a console form, stored through the media service
(type from the bytes, EXIF stripped, limits per kind) like ``POST /media``.

Two steps, as ``POST /media`` takes them: ``stage_files`` checks and stores
every file touching no database, then ``record_files`` writes their rows in
the page's writer session. Decoding a photo, probing a voice clip or a video
and cutting its poster frame take seconds; inside a writer session they held,
on SQLite, the process's writer lock and the database's write lock, and every
resident's filing behind them."""

from __future__ import annotations

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


def _uploader(ctx: ConsoleContext) -> Uploader:
    return Uploader("staff", ctx.user.id)


async def stage_files(
    store: MediaStore, ctx: ConsoleContext, parts: list[str | StarletteUploadFile]
) -> list[media_service.Staged]:
    """Check and store every chosen file (an empty file input sends a nameless
    part: skipped); on a refusal of any, what the others wrote is taken back."""
    files = [p for p in parts if isinstance(p, StarletteUploadFile) and p.filename]
    if len(files) > MAX_FILES:
        raise BadRequest(f"每次最多上传 {MAX_FILES} 个文件")
    staged: list[media_service.Staged] = []
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
            staged.append(
                await media_service.stage_upload(
                    store,
                    ctx.settings,
                    uploader=_uploader(ctx),
                    kind=found.kind,
                    file=cast(UploadFile, part),
                    now=ctx.now,
                )
            )
    except BaseException:
        await discard(staged)
        raise
    return staged


async def record_files(
    session: AsyncSession, ctx: ConsoleContext, staged: list[media_service.Staged]
) -> list[Media]:
    """The rows of staged files. The caller discards them (``discard``) if
    its transaction does not commit."""
    return [
        await media_service.record_upload(
            session, ctx.settings, s, uploader=_uploader(ctx), now=ctx.now
        )
        for s in staged
    ]


async def discard(staged: list[media_service.Staged]) -> None:
    """Remove what staged files wrote (best effort: the orphan sweep, ``ydt
    media cleanup``, removes what storage would not delete now)."""
    for s in staged:
        await s.writes.discard()
