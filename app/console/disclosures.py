"""Disclosures (村务公开) in the console: draft, import, review, publish, correct.

Every form calls ``app/disclosures/service.py``, the functions behind
``/api/v1/staff/disclosures``: who may draft (the village's clerk or
committee, units covering it, admins), who may publish (a committee member
who neither drafted nor last edited it), all-or-nothing xlsx import. Each
form carries the ``expected_version`` (the row's ``lock_version``) it was
rendered with; when someone else changed the disclosure first, the page says
so and shows the fresh state.

A rejected sheet is shown back row by row with each row's errors beside it:
the service names Excel row numbers, and the sheet itself (its first
``PREVIEW_ROWS`` lines) is read again here only for display.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from app.console import lookups
from app.console.dependencies import ConsoleContext, CsrfForm, Ctx, ReadingCtx
from app.console.dependencies import field as text_field
from app.console.forms import error_text
from app.console.routing import console_router
from app.console.templating import redirect, render
from app.core.deps import ReadSessionDep, SessionDep, StoreDep
from app.core.errors import AppError, BadRequest, PayloadTooLarge
from app.core.schemas import DB_INT_MAX
from app.disclosures import permissions, service, views
from app.disclosures.rows import ROW_MODEL, InvalidRows, RowError
from app.disclosures.schemas import Correct, DisclosureCreate, DisclosurePatch, Publish, Withdraw
from app.disclosures.xlsx import MAX_XLSX_BYTES
from app.models import Disclosure
from app.models.enums import DisclosureCategory, DisclosureStatus, PeriodKind, StaffRole

router = console_router(prefix="/console")
DisclosureId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]
STALE = "公开内容已被他人修改，已显示最新内容，请核对后重新操作"
PREVIEW_ROWS = 300
STATUS_LABELS = dict(service.STATUS_CN)
PERIOD_LABELS = {PeriodKind.month: "月度", PeriodKind.quarter: "季度", PeriodKind.year: "年度"}


@dataclass
class SheetReport:
    """A rejected sheet: its lines (Excel row number, cells) and errors by row."""

    header: list[str] = field(default_factory=list)
    lines: list[tuple[int, list[str]]] = field(default_factory=list)
    by_row: dict[int, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    truncated: bool = False


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]


def _sheet_lines(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]], bool]:
    """The first sheet's header and first lines, as text (display only; the
    service has already checked the file is a bounded, safe xlsx)."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        lines = wb.worksheets[0].iter_rows(values_only=True)
        header = [_cell_text(v) for v in next(lines, ())]
        out: list[tuple[int, list[str]]] = []
        for number, line in enumerate(lines, start=2):
            if len(out) >= PREVIEW_ROWS:
                return header, out, True
            cells = [_cell_text(v) for v in line][: max(len(header), 1) + 2]
            if any(cells):
                out.append((number, cells))
        return header, out, False
    finally:
        wb.close()


async def sheet_report(data: bytes, errors: list[RowError]) -> SheetReport:
    report = SheetReport()
    for e in errors:
        if e.row <= 1:
            report.general.append(e.message)
        else:
            report.by_row.setdefault(e.row, []).append(e.message)
    try:
        report.header, report.lines, report.truncated = await asyncio.to_thread(_sheet_lines, data)
    except Exception:
        report.lines = [(row, []) for row in sorted(report.by_row)]
    return report


def _payload(form: FormData, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: v for n in names if (v := text_field(form, n)) != ""}


async def _may_author(ctx: ConsoleContext, session: AsyncSession, d: Disclosure) -> bool:
    return await permissions.may_author(session, ctx.user, d.region_code)


def _may_review(ctx: ConsoleContext, d: Disclosure) -> bool:
    try:
        permissions.require_reviewer(ctx.user, d)
    except AppError:
        return False
    return True


@router.get("/disclosures")
async def disclosure_list(
    request: Request,
    ctx: ReadingCtx,
    session: ReadSessionDep,
    status: Annotated[DisclosureStatus | None, Query()] = None,
) -> Response:
    found = await service.staff_list(
        session, ctx.user, region_code=None, status=status, limit=100, offset=0
    )
    names = await views.region_names(session, [d.region_code for d in found])
    villages = await lookups.villages_in_reach(session, ctx.user)
    return render(
        request,
        "disclosures.html",
        ctx=ctx,
        items=[views.brief(d, names.get(d.region_code, d.region_code)) for d in found],
        status=status.value if status else "",
        status_labels=STATUS_LABELS,
        may_draft=ctx.user.role is not StaffRole.leader and bool(villages),
    )


async def _new_form(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    *,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    flash: tuple[str, str] | None = None,
) -> Response:
    return render(
        request,
        "disclosure_new.html",
        ctx=ctx,
        status_code=status_code,
        flash=flash,
        v=values or {},
        villages=await lookups.villages_in_reach(session, ctx.user),
        categories=list(DisclosureCategory),
        period_labels=PERIOD_LABELS,
    )


@router.get("/disclosures/new")
async def new_page(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    return await _new_form(request, ctx, session)


@router.post("/disclosures")
async def create(request: Request, ctx: Ctx, form: CsrfForm, session: SessionDep) -> Response:
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    names = ("region_code", "category", "period_kind", "period", "title", "body")
    data = _payload(form, (*names, "opening_balance"))
    if data.get("category") == DisclosureCategory.finance.value and "opening_balance" in data:
        # A draft has no rows yet, so it balances only at closing = opening; the
        # real closing balance comes with the rows (the import form asks for it).
        data["closing_balance"] = data["opening_balance"]
    try:
        body = DisclosureCreate.model_validate(data)
    except ValidationError as exc:
        return await _new_form(
            request, ctx, session, values=values, status_code=422, flash=("error", error_text(exc))
        )
    try:
        async with session.begin_nested():
            d = await service.create(session, ctx.user, body, now=ctx.now)
    except AppError as exc:
        return await _new_form(
            request,
            ctx,
            session,
            values=values,
            status_code=exc.status_code,
            flash=("error", exc.detail),
        )
    return redirect(request, f"/console/disclosures/{d.id}", flash=("ok", "草稿已保存"))


async def detail_view(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    store: StoreDep,
    disclosure_id: int,
    *,
    status_code: int = 200,
    flash: tuple[str, str] | None = None,
    sheet: SheetReport | None = None,
    open_form: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    d = await service.get_for_staff(session, ctx.user, disclosure_id)  # 404 out of scope
    view = await views.read(session, store, ctx.settings, d, now=ctx.now, staff=True)
    author = await _may_author(ctx, session, d)
    people = await lookups.staff_names(session, [d.author_id, d.last_editor_id, d.reviewer_id])
    headers: dict[str, tuple[str, ...]] = getattr(ROW_MODEL[d.category], "columns", {})
    labels = {name: names[0] for name, names in headers.items()}
    columns = list(labels) or (list(view.rows[0]) if view.rows else [])
    return render(
        request,
        "disclosure.html",
        ctx=ctx,
        status_code=status_code,
        flash=flash,
        d=view,
        columns=columns,
        labels=labels,
        people=people,
        status_labels=STATUS_LABELS,
        period_labels=PERIOD_LABELS,
        may_edit=author and d.status is DisclosureStatus.draft,
        may_publish=_may_review(ctx, d) and d.status is DisclosureStatus.draft,
        may_correct=author and d.status is DisclosureStatus.published,
        may_withdraw=d.status is DisclosureStatus.published
        and (
            author
            or (ctx.user.role is StaffRole.committee and ctx.user.region_code == d.region_code)
        ),
        reviewer_blocked=ctx.user.role is StaffRole.committee
        and d.status is DisclosureStatus.draft
        and not _may_review(ctx, d),
        sheet=sheet,
        open_form=open_form,
        v=values or {},
        max_mb=MAX_XLSX_BYTES // (1024 * 1024),
    )


@router.get("/disclosures/{disclosure_id}")
async def detail(
    request: Request,
    disclosure_id: DisclosureId,
    ctx: ReadingCtx,
    session: ReadSessionDep,
    store: StoreDep,
) -> Response:
    return await detail_view(request, ctx, session, store, disclosure_id)


async def _run(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    store: StoreDep,
    disclosure_id: int,
    which: str,
    form: FormData,
    model: type[BaseModel],
    data: dict[str, Any],
    call: Any,
    done: str,
) -> Response:
    """Validate ``data`` with the API's model, call the service in a savepoint,
    and answer: back to the page with the error, the conflict, or the result."""
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        return await detail_view(
            request, ctx, session, store, disclosure_id, status_code=422,
            flash=("error", error_text(exc)), open_form=which, values=values,
        )  # fmt: skip
    try:
        async with session.begin_nested():
            d = await call(body)
    except service.DisclosureStale:
        return await detail_view(
            request, ctx, session, store, disclosure_id, status_code=409, flash=("warn", STALE)
        )
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await detail_view(
            request, ctx, session, store, disclosure_id, status_code=exc.status_code,
            flash=("error", exc.detail), open_form=which, values=values,
        )  # fmt: skip
    return redirect(request, f"/console/disclosures/{d.id}", flash=("ok", done))


def _version(form: FormData) -> str:
    return text_field(form, "expected_version")


@router.post("/disclosures/{disclosure_id}/edit")
async def edit(
    request: Request,
    disclosure_id: DisclosureId,
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
    store: StoreDep,
) -> Response:
    data = _payload(form, ("title", "period", "opening_balance", "closing_balance"))
    if "body" in form:
        data["body"] = text_field(form, "body")  # may be emptied on purpose
    data["expected_version"] = _version(form)

    async def call(body: DisclosurePatch) -> Disclosure:
        return await service.patch(session, ctx.user, disclosure_id, body, now=ctx.now)

    return await _run(
        request, ctx, session, store, disclosure_id, "edit", form, DisclosurePatch, data, call,
        "草稿已更新",
    )  # fmt: skip


@router.post("/disclosures/{disclosure_id}/publish")
async def publish(
    request: Request,
    disclosure_id: DisclosureId,
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
    store: StoreDep,
) -> Response:
    data = {"expected_version": _version(form), "note": text_field(form, "note")}

    async def call(body: Publish) -> Disclosure:
        return await service.publish(session, ctx.user, disclosure_id, body, now=ctx.now)

    return await _run(
        request, ctx, session, store, disclosure_id, "publish", form, Publish, data, call,
        "已审核发布，群众可在小程序查看",
    )  # fmt: skip


@router.post("/disclosures/{disclosure_id}/withdraw")
async def withdraw(
    request: Request,
    disclosure_id: DisclosureId,
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
    store: StoreDep,
) -> Response:
    data = {"expected_version": _version(form), "reason": text_field(form, "reason")}

    async def call(body: Withdraw) -> Disclosure:
        return await service.withdraw(session, ctx.user, disclosure_id, body, now=ctx.now)

    return await _run(
        request, ctx, session, store, disclosure_id, "withdraw", form, Withdraw, data, call,
        "已撤回",
    )  # fmt: skip


@router.post("/disclosures/{disclosure_id}/correct")
async def correct(
    request: Request,
    disclosure_id: DisclosureId,
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
    store: StoreDep,
) -> Response:
    data = _payload(form, ("reason", "title", "opening_balance", "closing_balance"))
    if text_field(form, "body"):
        data["body"] = text_field(form, "body")
    d = await service.get_for_staff(session, ctx.user, disclosure_id)
    if _version(form) != str(d.lock_version):
        return await detail_view(
            request, ctx, session, store, disclosure_id, status_code=409, flash=("warn", STALE)
        )

    async def call(body: Correct) -> Disclosure:
        return await service.correct(session, ctx.user, disclosure_id, body, now=ctx.now)

    return await _run(
        request, ctx, session, store, disclosure_id, "correct", form, Correct, data, call,
        "更正草稿已建立：请导入或修改内容后，交监委会审核发布",
    )  # fmt: skip


@router.post("/disclosures/{disclosure_id}/rows")
async def import_rows(
    request: Request,
    disclosure_id: DisclosureId,
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
    store: StoreDep,
) -> Response:
    """The sheet replaces the draft's rows, or is rejected whole with every bad
    row named beside it."""
    upload = form.get("file")
    version = _version(form)

    async def again(
        status: int, flash: tuple[str, str], sheet: SheetReport | None = None
    ) -> Response:
        return await detail_view(
            request, ctx, session, store, disclosure_id, status_code=status, flash=flash,
            sheet=sheet, open_form="import",
        )  # fmt: skip

    if not isinstance(upload, UploadFile) or not upload.filename:
        await service.get_for_staff(session, ctx.user, disclosure_id)
        return await again(422, ("error", "请选择要导入的 .xlsx 表格"))
    if not version.isdigit() or len(version) > 10:
        return await again(422, ("error", "「版本」填写有误，请刷新页面"))
    data = await upload.read(MAX_XLSX_BYTES + 1)
    try:
        if len(data) > MAX_XLSX_BYTES:
            raise PayloadTooLarge(f"表格不能超过 {MAX_XLSX_BYTES // (1024 * 1024)} MB")
        balances = {}
        for name in ("opening_balance", "closing_balance"):
            raw = text_field(form, name)
            if raw:
                try:
                    balances[name] = Decimal(raw).quantize(Decimal("0.01"))
                    if not balances[name].is_finite() or abs(balances[name]) >= 10**12:
                        raise InvalidOperation
                except (ArithmeticError, ValueError, InvalidOperation):
                    raise BadRequest("期初、期末余额须为金额（如 12000.00）") from None
        async with session.begin_nested():
            d = await service.import_rows(
                session,
                ctx.user,
                disclosure_id,
                data,
                expected_version=int(version),
                opening_balance=balances.get("opening_balance"),
                closing_balance=balances.get("closing_balance"),
                now=ctx.now,
            )
    except service.DisclosureStale:
        return await again(409, ("warn", STALE))
    except InvalidRows as exc:
        report = await sheet_report(data, list(exc.errors))
        rows = len({e.row for e in exc.errors if e.row > 1})
        text = (
            f"表格有 {rows} 行有问题，未导入任何一行；请按下表所标修改后重新导入"
            if rows and not report.general
            else f"表格未导入：{exc.detail}"
        )
        return await again(400, ("error", text), report)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await again(exc.status_code, ("error", exc.detail))
    return redirect(
        request, f"/console/disclosures/{d.id}", flash=("ok", f"已导入 {len(d.rows)} 行")
    )
