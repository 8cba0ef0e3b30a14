from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from app.core.db import write_session
from app.core.deps import ClockDep, SettingsDep, StoreDep
from app.core.replica import ReplicaSessionDep
from app.ledger import dossier as dossier_files
from app.ledger import service
from app.staff.dependencies import ReadingStaff
from app.workflow import reads
from app.workflow.queue import QueueFilter, queue_filter

router = APIRouter(prefix="/staff", tags=["ledger"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _writer(request: Request) -> dossier_files.Writer:
    """A writer's session of its own each time the dossier asks (it reads
    the database, then checks and packs the media holding none)."""
    return lambda: write_session(request)


def _file(path: Path, media_type: str, filename: str) -> FileResponse:
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
        background=BackgroundTask(os.unlink, path),
    )


@router.get("/ledger.xlsx", response_class=FileResponse, responses={200: {"content": {XLSX: {}}}})
async def ledger(
    request: Request,
    user: ReadingStaff,
    session: ReplicaSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    f: Annotated[QueueFilter, Depends(queue_filter)],
) -> FileResponse:
    """The queue's filters and order, as the register (台账)."""
    now = clock.now()
    path, found = await service.write_ledger(session, user, f, now=now, settings=settings)
    await reads.record(request, user, found, now=now, made=path)
    return _file(path, XLSX, f"台账-{now:%Y%m%d}.xlsx")


DossierId = Annotated[str, PathParam(min_length=1, max_length=64)]


@router.get(
    "/complaints/{complaint_id}/dossier.pdf",
    response_class=FileResponse,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def dossier_pdf(
    complaint_id: DossierId,
    request: Request,
    user: ReadingStaff,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
) -> FileResponse:
    """One case, one file, printable (A4, Chinese): identity masked for the
    reader's role, media checked against their sha256, verification block."""
    path, tracking_no = await dossier_files.write_pdf(
        _writer(request), user, complaint_id, store, now=clock.now(), settings=settings
    )
    return _file(path, "application/pdf", f"一案一卷-{tracking_no}.pdf")


@router.get(
    "/complaints/{complaint_id}/dossier.zip",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
async def dossier(
    complaint_id: DossierId,
    request: Request,
    user: ReadingStaff,
    settings: SettingsDep,
    store: StoreDep,
    clock: ClockDep,
) -> FileResponse:
    """The PDF beside the machine-readable files and the checked media."""
    path, tracking_no = await dossier_files.write_dossier(
        _writer(request), user, complaint_id, store, now=clock.now(), settings=settings
    )
    return _file(path, "application/zip", f"一案一卷-{tracking_no}.zip")
