"""Administration in the console: staff accounts and the holiday calendar.

The same service functions as the admin API (``/api/v1/staff/users…``,
``PUT /api/v1/calendar/{year}``): creating an account checks the password
against the same guessability rules, disabling an account or resetting its
password ends every session it has (API tokens and console sessions alike),
and "revoke sessions" ends them without changing the account. Only
administrators reach these pages; the services do not check the role, so the
check here is the one the API's ``AdminStaff`` dependency makes.

Routing rules, the live routing preview and QR posters are in
``app/console/admin_routing.py``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.responses import Response

from app.console.dependencies import ConsoleContext, CsrfForm, Ctx, ReadingCtx, field
from app.console.forms import error_text
from app.console.routing import console_router
from app.console.templating import redirect, render
from app.core.deps import ReadSessionDep, SessionDep
from app.core.errors import AppError, BadRequest, Forbidden
from app.core.schemas import DB_INT_MAX
from app.models import CalendarDay, SupervisionUnit
from app.models.enums import StaffRole
from app.routing import calendar_service
from app.staff import service as staff_service
from app.staff.schemas import StaffCreate, StaffUpdate

router = console_router(prefix="/console/admin")
StaffId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]
MAX_CALENDAR_BYTES = 256 * 1024


def require_admin(ctx: ConsoleContext) -> None:
    if ctx.user.role is not StaffRole.admin:
        raise Forbidden("只有系统管理员可以使用系统管理")


@router.get("")
async def admin_home(request: Request, ctx: ReadingCtx) -> Response:
    require_admin(ctx)
    return redirect(request, "/console/admin/users")


async def users_view(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    *,
    status_code: int = 200,
    flash: tuple[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    users = await staff_service.list_staff(session, unit_id=None, limit=500, offset=0)
    units = list(
        (
            await session.execute(
                select(SupervisionUnit)
                .where(SupervisionUnit.active.is_(True))
                .order_by(SupervisionUnit.code)
            )
        ).scalars()
    )
    return render(
        request,
        "admin_users.html",
        ctx=ctx,
        status_code=status_code,
        flash=flash,
        users=users,
        units=units,
        unit_names={u.id: u.name for u in units},
        roles=list(StaffRole),
        v=values or {},
    )


@router.get("/users")
async def users(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    require_admin(ctx)
    return await users_view(request, ctx, session)


@router.post("/users")
async def create_user(request: Request, ctx: Ctx, form: CsrfForm, session: SessionDep) -> Response:
    require_admin(ctx)
    names = (
        "username",
        "password",
        "role",
        "display_name",
        "unit_code",
        "department_code",
        "region_code",
        "phone",
    )
    data = {n: v for n in names if (v := field(form, n)) != ""}
    values = {k: v for k, v in data.items() if k != "password"}
    try:
        body = StaffCreate.model_validate(data)
    except ValidationError as exc:
        return await users_view(
            request, ctx, session, status_code=422, flash=("error", error_text(exc)), values=values
        )
    try:
        async with session.begin_nested():
            user = await staff_service.create_staff(session, body, now=ctx.now)
    except AppError as exc:
        return await users_view(
            request,
            ctx,
            session,
            status_code=exc.status_code,
            flash=("error", exc.detail),
            values=values,
        )
    return redirect(request, "/console/admin/users", flash=("ok", f"已创建账号 {user.username}"))


async def _update(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    staff_id: int,
    data: dict[str, Any],
    done: str,
) -> Response:
    try:
        body = StaffUpdate.model_validate(data)
    except ValidationError as exc:
        return await users_view(
            request, ctx, session, status_code=422, flash=("error", error_text(exc))
        )
    try:
        async with session.begin_nested():
            user = await staff_service.update_staff(session, ctx.user, staff_id, body, now=ctx.now)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await users_view(
            request, ctx, session, status_code=exc.status_code, flash=("error", exc.detail)
        )
    return redirect(request, "/console/admin/users", flash=("ok", f"{user.display_name}：{done}"))


@router.post("/users/{staff_id}/disable")
async def disable(
    request: Request, staff_id: StaffId, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    require_admin(ctx)
    return await _update(
        request, ctx, session, staff_id, {"active": False}, "已停用，其全部登录已失效"
    )


@router.post("/users/{staff_id}/enable")
async def enable(
    request: Request, staff_id: StaffId, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    require_admin(ctx)
    return await _update(request, ctx, session, staff_id, {"active": True}, "已启用")


@router.post("/users/{staff_id}/password")
async def reset_password(
    request: Request, staff_id: StaffId, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    require_admin(ctx)
    return await _update(
        request,
        ctx,
        session,
        staff_id,
        {"password": field(form, "password")},
        "密码已重置，其全部登录已失效",
    )


@router.post("/users/{staff_id}/revoke-sessions")
async def revoke(
    request: Request, staff_id: StaffId, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    require_admin(ctx)
    user = await staff_service.get_staff(session, staff_id)
    count = await staff_service.revoke_sessions(session, user.id, reason="admin", now=ctx.now)
    return redirect(
        request,
        "/console/admin/users",
        flash=("ok", f"{user.display_name}：已结束 {count} 个登录会话"),
    )


# --- the holiday calendar --------------------------------------------------------


async def calendar_view(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    *,
    status_code: int = 200,
    flash: tuple[str, str] | None = None,
    text: str = "",
) -> Response:
    rows = list(
        (
            await session.execute(
                select(CalendarDay)
                .where(CalendarDay.day >= date(ctx.now.year - 1, 1, 1))
                .order_by(CalendarDay.day)
            )
        ).scalars()
    )
    years = sorted({r.day.year for r in rows})
    return render(
        request,
        "admin_calendar.html",
        ctx=ctx,
        status_code=status_code,
        flash=flash,
        rows=rows,
        years=years,
        text=text,
        max_kb=MAX_CALENDAR_BYTES // 1024,
    )


@router.get("/calendar")
async def calendar_page(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    require_admin(ctx)
    return await calendar_view(request, ctx, session)


@router.post("/calendar")
async def import_calendar(
    request: Request, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    """The State Council's schedule as the API takes it (``{"year", "holidays",
    "workdays"}``), from a file or pasted; a year's table is replaced whole."""
    require_admin(ctx)
    text = field(form, "schedule")
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_CALENDAR_BYTES + 1)
        if len(raw) > MAX_CALENDAR_BYTES:
            return await calendar_view(
                request, ctx, session, status_code=413,
                flash=("error", f"日历文件不能超过 {MAX_CALENDAR_BYTES // 1024} KB"),
            )  # fmt: skip
        text = raw.decode("utf-8", errors="replace")
    try:
        if not text:
            raise BadRequest("请上传日历文件或粘贴其内容")
        if len(text) > MAX_CALENDAR_BYTES:
            raise BadRequest(f"日历内容不能超过 {MAX_CALENDAR_BYTES // 1024} KB")
        try:
            data = json.loads(text, parse_constant=lambda _: None)
        except (ValueError, RecursionError):
            raise BadRequest("日历内容不是有效的 JSON") from None
        entries = calendar_service.parse_schedule(data)
        async with session.begin_nested():
            count = await calendar_service.import_schedule(
                session, entries, actor=ctx.user.username, now=ctx.now
            )
    except AppError as exc:
        return await calendar_view(
            request, ctx, session, status_code=exc.status_code, flash=("error", exc.detail),
            text=text[:20_000],
        )  # fmt: skip
    year = entries[0].day.year
    return redirect(
        request,
        "/console/admin/calendar",
        flash=("ok", f"已导入 {year} 年节假日安排：{count} 天（此后的期限按新日历计算）"),
    )
