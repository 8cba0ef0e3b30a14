from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Path, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from app.core.boundary import FORM_OVERHEAD_BYTES, body_limit
from app.core.config import Settings
from app.core.db import write_session
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, StoreDep
from app.core.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from app.core.storage import MediaStore
from app.core.storage.local import LocalMediaStore
from app.idempotency import service as idempotency
from app.media import integrity, service
from app.media.dependencies import CurrentUploader, ReadingUploader
from app.media.schemas import MediaLimits, MediaRead, TicketRead, TicketRequest
from app.models import Media
from app.models.enums import MediaKind
from app.moderation import service as moderation

router = APIRouter(tags=["media"])
files_router = APIRouter(tags=["media"])

MediaId = Annotated[str, Path(min_length=1, max_length=64)]


def largest_upload(s: Settings) -> int:
    """The request body cap of the upload routes: the largest kind, plus the form around it."""
    largest = max(
        s.media_max_image_bytes,
        s.media_max_voice_bytes,
        s.media_max_video_bytes,
        s.media_max_document_bytes,
    )
    return largest + FORM_OVERHEAD_BYTES


@router.get("/media/limits", response_model=MediaLimits)
async def get_limits(settings: SettingsDep) -> MediaLimits:
    return service.limits(settings)


@router.post("/media", response_model=MediaRead, status_code=201)
@body_limit(largest_upload)
async def upload_media(
    request: Request,
    uploader: ReadingUploader,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    file: Annotated[UploadFile, File(description="the image, voice clip or video")],
    kind: Annotated[MediaKind, Form()],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> MediaRead | JSONResponse:
    # The file is checked and stored before the database is written (a
    # video takes seconds): on SQLite a writer's session would hold the write
    # lock, and every filing, for as long. A retry checks it again, and what
    # it stored is removed when the key's answer is replayed.
    now = clock.now()
    key = idempotency.check_key(idempotency_key)
    staged = await service.stage_upload(
        store, settings, uploader=uploader, kind=kind, file=file, now=now
    )
    try:
        async with write_session(request) as session:
            record = None
            if key:
                found = await idempotency.begin(
                    session,
                    scope="media",
                    owner=uploader.label,
                    key=key,
                    fingerprint=kind.value,
                    now=now,
                )
                if isinstance(found, idempotency.Replay):
                    await staged.writes.discard()
                    return JSONResponse(status_code=found.status_code, content=found.body)
                record = found
            media = await service.record_upload(
                session, settings, staged, uploader=uploader, now=now
            )
            out = await _read(store, settings, media, now=now)
            if record is not None:
                await idempotency.complete(
                    session, record, status_code=201, body=out.model_dump(mode="json")
                )
    except BaseException:
        await staged.writes.discard()
        raise
    return out


@router.post(
    "/media/upload-tickets",
    response_model=TicketRead,
    status_code=201,
    responses={415: {"description": "a content type not accepted for this kind"}},
)
async def create_ticket(
    body: TicketRequest,
    uploader: CurrentUploader,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TicketRead:
    media, post = await service.create_ticket(
        session,
        store,
        settings,
        uploader=uploader,
        kind=body.kind,
        content_type=body.content_type,
        size=body.size,
        now=clock.now(),
    )
    assert post.expires_at is not None
    return TicketRead(
        media_id=media.id,
        url=post.url,
        fields=post.fields,
        expires_at=post.expires_at,
        max_size=media.max_size,
    )


@router.post("/media/{media_id}/complete", response_model=MediaRead)
async def complete_upload(
    media_id: MediaId,
    request: Request,
    uploader: ReadingUploader,
    session: ReadSessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> MediaRead:
    # Read, check and store with no writer's session open (as upload_media),
    # then the row is written in a short one.
    now = clock.now()
    media = await service.get_owned(session, media_id, uploader)
    session.expunge(media)
    staged = await service.stage_completion(store, settings, media, now=now)
    if staged is not None:
        written = False
        try:
            async with write_session(request) as writer:
                media, written = await service.record_completion(writer, settings, staged, now=now)
        except BaseException:
            if written:  # its commit failed: nothing names what was stored
                await staged.writes.discard()
            raise
        await service.forget_upload_key(store, staged, media)
    return await _read(store, settings, media, now=now)


@router.get("/media/{media_id}", response_model=MediaRead)
async def get_media(
    media_id: MediaId,
    request: Request,
    uploader: ReadingUploader,
    session: ReadSessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> MediaRead:
    # The mini-program polls this while an upload is judged: a read session,
    # so on SQLite no poll takes the write lock; what the integrity check
    # found (rarely anything) is kept apart.
    media = await service.get_owned(session, media_id, uploader)
    out = await _read(store, settings, media, now=clock.now())
    found = integrity.take_found(session, media)
    if found:
        async with write_session(request) as writer:
            await integrity.record_found(writer, media.id, found)
    return out


async def _read(store: MediaStore, settings: Settings, media: Media, *, now: datetime) -> MediaRead:
    links = await service.urls(store, settings, media, now=now)
    out = MediaRead.model_validate(media)
    out.url, out.play_url, out.poster_url = links.url, links.play_url, links.poster_url
    out.moderation_note = moderation.resident_note(media)
    return out


@router.post("/media/direct-upload", status_code=204, include_in_schema=False)
@body_limit(largest_upload, signed_in=False)  # the signed POST policy is its credential
async def local_direct_upload(
    request: Request,
    session: ReadSessionDep,  # it only reads: no write lock while the bytes are written
    store: StoreDep,
    clock: ClockDep,
    key: Annotated[str, Form()],
    policy: Annotated[str, Form()],
    signature: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
) -> Response:
    """The embedded default's stand-in for MinIO's presigned POST."""
    if not isinstance(store, LocalMediaStore):
        raise NotFound("Not Found")
    rules = store.verify_post_policy(policy, signature, now=clock.now())
    if rules["key"] != key:
        raise Forbidden("上传凭证与文件名不符")
    if not await service.ticket_open(session, key):
        # S3 cannot revoke a signed form; here we can say so (there, a re-post
        # lands on a key nothing reads and the orphan sweep removes it).
        raise Conflict("上传凭证已使用，请重新申请")
    form = await request.form()
    if str(form.get("Content-Type", "")) != rules["content_type"]:
        raise Forbidden("上传凭证与文件类型不符")
    size = file.size or 0
    if size < int(rules["min"]) or size > int(rules["max"]):
        raise PayloadTooLarge("文件大小超出上传凭证允许的范围") if size else BadRequest("文件为空")

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await file.read(256 * 1024):
            yield chunk

    await store.put_stream(key, chunks(), content_type=rules["content_type"])
    return Response(status_code=204)


@files_router.get("/media-files/{key:path}", include_in_schema=False)
async def local_media_file(
    key: str, exp: int, sig: str, store: StoreDep, clock: ClockDep
) -> FileResponse:
    """The embedded default's stand-in for a presigned GET."""
    if not isinstance(store, LocalMediaStore):
        raise NotFound("Not Found")
    path = store.verify_get(key, exp, sig, now=clock.now())
    if not path.is_file():
        raise NotFound("文件不存在")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=300"})
