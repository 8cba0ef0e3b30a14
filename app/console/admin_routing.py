"""Routing rules with a live preview, and the villages' QR posters.

Overrides and designated cadres go through ``app/routing/admin_service.py``
(the functions behind ``/api/v1/routing/overrides`` and
``/designated-cadres``): a new rule for the same key revokes the old one,
which stays as history. The preview is an htmx partial that asks
``routing_service.decide`` (the pure ``routing.engine.route`` fed from the
database, exactly as a filing is routed) and shows its trace, so an
administrator sees the effect of a rule before and after saving it.

QR posters are ``app/qrcodes/service.poster`` (a WeChat mini-program code when
WeChat is configured, a plain QR code otherwise) for any signed-in staff
member, as ``GET /api/v1/staff/qrcodes/{code}.png``; the township sheet lays
one poster per village on A4 pages for printing.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import Response

from app.console import lookups
from app.console.admin import require_admin
from app.console.dependencies import ConsoleContext, CsrfForm, Ctx, ReadingCtx, field
from app.console.forms import error_text
from app.console.routing import console_router
from app.console.templating import redirect, render
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, WeChatDep
from app.core.errors import AppError, BadRequest, NotFound
from app.core.schemas import DB_INT_MAX
from app.models import Region, StaffUser, SupervisionUnit
from app.models.enums import RegionLevel, StaffRole
from app.qrcodes import service as qr_service
from app.routing import admin_service
from app.routing import service as routing_service
from app.routing.schemas import DesignationCreate, OverrideCreate, RoutePreviewRequest

router = console_router(prefix="/console/admin")
RuleId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]
RegionCode = Annotated[str, Path(pattern=r"^\d{12}$")]


async def routing_view(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    *,
    status_code: int = 200,
    flash: tuple[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    overrides = await admin_service.list_overrides(session, item_code=None, include_revoked=False)
    designations = await admin_service.list_designations(session, unit_code=None)
    units = list(
        (
            await session.execute(
                select(SupervisionUnit)
                .where(SupervisionUnit.active.is_(True))
                .order_by(SupervisionUnit.code)
            )
        ).scalars()
    )
    cadres = list(
        (
            await session.execute(
                select(StaffUser)
                .where(StaffUser.role == StaffRole.supervisor, StaffUser.active.is_(True))
                .order_by(StaffUser.username)
            )
        ).scalars()
    )
    regions = await lookups.regions_in_reach(session, ctx.user)
    return render(
        request,
        "admin_routing.html",
        ctx=ctx,
        status_code=status_code,
        flash=flash,
        overrides=overrides,
        designations=designations,
        units=units,
        unit_names={u.id: u.name for u in units},
        cadres=cadres,
        cadre_names={c.id: c.display_name for c in cadres},
        region_names={r.code: r.label.strip("　") for r in regions},
        regions=regions,
        villages=[r for r in regions if r.level is RegionLevel.village],
        categories=await lookups.categories(session),
        v=values or {},
    )


@router.get("/routing")
async def routing_page(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    require_admin(ctx)
    return await routing_view(request, ctx, session)


async def _save(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    form_values: dict[str, str],
    work: Awaitable[Any],
    done: str,
) -> Response:
    try:
        async with session.begin_nested():
            await work
    except AppError as exc:
        return await routing_view(
            request, ctx, session, status_code=exc.status_code, flash=("error", exc.detail),
            values=form_values,
        )  # fmt: skip
    return redirect(request, "/console/admin/routing", flash=("ok", done))


@router.post("/routing/overrides")
async def create_override(
    request: Request, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    require_admin(ctx)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    names = ("item_code", "region_code", "unit_code", "reason")
    try:
        body = OverrideCreate.model_validate({n: field(form, n) for n in names})
    except ValidationError as exc:
        return await routing_view(
            request, ctx, session, status_code=422, flash=("error", error_text(exc)), values=values
        )
    work = admin_service.create_override(
        session, **body.model_dump(), actor=ctx.user.username, now=ctx.now
    )
    return await _save(request, ctx, session, values, work, "分流调整规则已生效")


@router.post("/routing/overrides/{rule_id}/revoke")
async def revoke_override(
    request: Request, rule_id: RuleId, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    require_admin(ctx)
    work = admin_service.revoke_override(session, rule_id, actor=ctx.user.username, now=ctx.now)
    return await _save(request, ctx, session, {}, work, f"分流调整规则 #{rule_id} 已撤销")


@router.post("/routing/designations")
async def designate(request: Request, ctx: Ctx, form: CsrfForm, session: SessionDep) -> Response:
    require_admin(ctx)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    names = ("unit_code", "item_code", "username")
    try:
        body = DesignationCreate.model_validate({n: field(form, n) for n in names})
    except ValidationError as exc:
        return await routing_view(
            request, ctx, session, status_code=422, flash=("error", error_text(exc)), values=values
        )
    work = admin_service.designate(
        session, **body.model_dump(), actor=ctx.user.username, now=ctx.now
    )
    return await _save(request, ctx, session, values, work, "事项责任人已指定")


@router.post("/routing/designations/{rule_id}/revoke")
async def revoke_designation(
    request: Request, rule_id: RuleId, ctx: Ctx, form: CsrfForm, session: SessionDep
) -> Response:
    require_admin(ctx)
    work = admin_service.revoke_designation(session, rule_id, actor=ctx.user.username, now=ctx.now)
    return await _save(request, ctx, session, {}, work, f"事项责任人指定 #{rule_id} 已撤销")


@router.post("/routing/preview")
async def preview(
    request: Request,
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """The routing trace for (item, village) now: an htmx partial, or a whole
    page when the browser runs no script."""
    require_admin(ctx)
    decision = None
    error = ""
    unit = None
    try:
        body = RoutePreviewRequest.model_validate(
            {"item_code": field(form, "item_code"), "region_code": field(form, "region_code")}
        )
        item = await routing_service.current_item(session, body.item_code)
        decision = await routing_service.decide(
            session, item=item, region_code=body.region_code, received_at=clock.now(),
            settings=settings,
        )  # fmt: skip
        unit = await session.get(SupervisionUnit, decision.unit.id)
    except ValidationError as exc:
        error = error_text(exc)
    except AppError as exc:
        error = exc.detail
    names = await lookups.staff_names(session, [decision.cadre_id if decision else None])
    partial = request.headers.get("hx-request") == "true"
    return render(
        request,
        "admin_routing_preview.html" if partial else "admin_routing_preview_page.html",
        ctx=ctx,
        status_code=200 if decision else 422,
        decision=decision,
        unit=unit,
        cadre=names.get(decision.cadre_id or 0) if decision else None,
        error=error,
    )


# --- QR posters --------------------------------------------------------------------


@router.get("/qrcodes")
async def qr_index(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    regions = await lookups.regions_in_reach(session, ctx.user)
    townships = [r for r in regions if r.level is RegionLevel.township]
    return render(request, "admin_qrcodes.html", ctx=ctx, townships=townships)


@router.get("/qrcodes/township/{region_code}")
async def qr_sheet(
    request: Request, region_code: RegionCode, ctx: ReadingCtx, session: ReadSessionDep
) -> Response:
    """Every village of a township, one poster each, laid out for A4 printing."""
    reach = {r.code for r in await lookups.regions_in_reach(session, ctx.user)}
    township = await session.get(Region, region_code)
    if township is None or region_code not in reach:
        raise NotFound("区划不存在")
    if township.level is not RegionLevel.township:
        raise BadRequest(f"{township.name} 不是乡镇（街道）")
    villages = list(
        (
            await session.execute(
                select(Region)
                .where(Region.parent_code == region_code, Region.level == RegionLevel.village)
                .order_by(Region.code)
            )
        ).scalars()
    )
    return render(request, "admin_qrsheet.html", ctx=ctx, township=township, villages=villages)


@router.get("/qrcodes/{region_code}.png")
async def qr_png(
    region_code: RegionCode,
    ctx: ReadingCtx,
    session: ReadSessionDep,
    settings: SettingsDep,
    wechat: WeChatDep,
    clock: ClockDep,
) -> Response:
    png = await qr_service.poster(
        session, region_code, settings=settings, wechat=wechat, now=clock.now()
    )
    download = f'attachment; filename="qr-{region_code}.png"'
    return Response(
        content=png,
        media_type="image/png",
        headers={"Content-Disposition": download, "Cache-Control": "private, max-age=3600"},
    )
