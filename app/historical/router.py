"""历史件补录 over HTTP: a JSON batch, or an .xlsx sheet; both all or nothing."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, UploadFile

from app.core.boundary import FORM_OVERHEAD_BYTES, body_limit
from app.core.deps import ClockDep, SessionDep, SettingsDep
from app.core.errors import PayloadTooLarge
from app.disclosures.xlsx import MAX_XLSX_BYTES
from app.historical import service, sheet
from app.historical.schemas import HistoricalImport, HistoricalImported
from app.staff.dependencies import CurrentStaff

router = APIRouter(prefix="/staff/historical-cases", tags=["historical"])


@router.post("", response_model=HistoricalImported, status_code=201)
async def import_json(
    body: HistoricalImport,
    user: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> HistoricalImported:
    """Cases handled before this system, with their real dates and outcome
    (admin, or a commission for its region). Any bad row rejects the batch
    (400 ``invalid_rows`` listing every problem by row); nothing is half imported."""
    rows = list(enumerate(body.rows, start=1))
    return await service.import_cases(
        session, user, rows, now=clock.now(), settings=settings, dry_run=body.dry_run
    )


@router.post(".xlsx", response_model=HistoricalImported, status_code=201)
@body_limit(lambda _: MAX_XLSX_BYTES + FORM_OVERHEAD_BYTES)
async def import_xlsx(
    user: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    file: Annotated[
        UploadFile,
        File(
            description="header in row 1: 渠道, 事项编码, 村（社区）编码, 反映内容, 收到时间, "
            "受理时间, 办结时间, 办理结果类型 (办结/不予受理), 办理结果, 匿名, 反映人, 联系电话"
        ),
    ],
    dry_run: Annotated[bool, Form(description="check every row, import nothing")] = False,
) -> HistoricalImported:
    """The same import from a sheet; errors carry the Excel row numbers."""
    await service.importer_prefix(session, user)  # refuse before reading the file
    data = await file.read(MAX_XLSX_BYTES + 1)
    if len(data) > MAX_XLSX_BYTES:
        raise PayloadTooLarge(f"表格不能超过 {MAX_XLSX_BYTES // (1024 * 1024)} MB")
    rows = await sheet.read(data, ZoneInfo(settings.timezone))
    return await service.import_cases(
        session, user, rows, now=clock.now(), settings=settings, dry_run=dry_run
    )
