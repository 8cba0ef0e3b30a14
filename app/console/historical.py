"""历史件补录 in the console: the same sheet import as
``POST /api/v1/staff/historical-cases.xlsx`` (app/historical), for the
commission's cadres and administrators. A check (dry run) first, then the
import; every bad row is listed with its Excel row number."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from app.console.dependencies import CsrfForm, Ctx, ReadingCtx, field
from app.console.routing import console_router
from app.console.templating import render
from app.core.boundary import FORM_OVERHEAD_BYTES, body_limit
from app.core.deps import ReadSessionDep, SessionDep
from app.core.errors import AppError
from app.disclosures import rows as sheet_rows
from app.disclosures.xlsx import MAX_XLSX_BYTES
from app.historical import service, sheet

router = console_router(prefix="/console")


@router.get("/historical")
async def historical_page(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    await service.importer_prefix(session, ctx.user)  # 403 for anyone else
    return render(request, "historical.html", ctx=ctx, result=None, problems=[])


@router.post("/historical")
@body_limit(lambda _: MAX_XLSX_BYTES + FORM_OVERHEAD_BYTES)
async def historical_import(
    request: Request, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    await service.importer_prefix(session, ctx.user)
    upload = form.get("file")
    dry_run = field(form, "dry_run") == "1"
    problems: list[sheet_rows.RowError] = []
    error: str | None = None
    result = None
    if not isinstance(upload, UploadFile):
        error = "请选择要导入的 .xlsx 表格"
    else:
        data = await upload.read(MAX_XLSX_BYTES + 1)
        try:
            if len(data) > MAX_XLSX_BYTES:
                raise sheet_rows.InvalidRows(
                    [sheet_rows.RowError(0, None, f"表格不能超过 {MAX_XLSX_BYTES // 1048576} MB")]
                )
            async with session.begin_nested():  # all or nothing, whatever fails
                rows = await sheet.read(data, ZoneInfo(ctx.settings.timezone))
                result = await service.import_cases(
                    session, ctx.user, rows, now=ctx.now, settings=ctx.settings, dry_run=dry_run
                )
        except sheet_rows.InvalidRows as exc:
            problems, error = exc.errors, exc.detail
        except AppError as exc:
            error = exc.detail
    return render(
        request,
        "historical.html",
        ctx=ctx,
        status_code=201 if result and not result.dry_run else 400 if error else 200,
        result=result,
        problems=problems,
        flash=("error", error) if error else None,
    )
