"""Callbacks (回访抽查): a commission draws a quarter's sample, works the list
and records each call.

Every rule is the feedback service's, the one ``/staff/callbacks`` uses: only
a commission (or an administrator) draws and sees its draws (anyone else gets
403 for the list and 404 for a draw, as from the API); only the commission's
supervision staff record, never the unit whose case it is. The record form is
shown only where the service would accept it, and the service checks again.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import Response

from app.console import lookups
from app.console.dependencies import ConsoleContext, CsrfForm, Ctx, ReadingCtx, field
from app.console.routing import console_router
from app.console.templating import redirect, render
from app.core.deps import ReadSessionDep, SessionDep
from app.core.errors import BadRequest, NotFound
from app.core.schemas import DbId
from app.feedback import service as feedback_service
from app.feedback.schemas import CallbackRecord
from app.models import Callback, CallbackDraw, Complaint, StaffUser, SupervisionUnit
from app.stats import rollup

router = console_router(prefix="/console")

METHODS = {"phone": "电话回访", "on_site": "实地回访"}
VERDICTS = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}
LABELS = {
    "method": "回访方式",
    "reached": "是否联系上",
    "resolved": "问题是否解决",
    "satisfaction": "满意度",
    "fake_closure": "虚假办结",
    "note": "回访记录",
}


def quarters(today: date, n: int = 4) -> list[str]:
    """This quarter and the ones before it, newest first."""
    year, q = today.year, (today.month - 1) // 3 + 1
    out = []
    for _ in range(n):
        out.append(f"{year}Q{q}")
        year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return out


@router.get("/callbacks")
async def callbacks_page(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    draws = await feedback_service.list_draws(session, ctx.user)  # 403 unless a commission
    return render(
        request,
        "callbacks.html",
        ctx=ctx,
        draws=draws,
        quarters=quarters(rollup.local_date(ctx.now)),
    )


@router.post("/callbacks/draw")
async def draw(request: Request, ctx: Ctx, session: SessionDep, form: CsrfForm) -> Response:
    quarter = field(form, "quarter")
    if len(quarter) > 8:
        raise BadRequest("季度格式应为 2026Q3")
    done = await feedback_service.draw_callbacks(
        session, ctx.user, quarter, now=ctx.now, settings=ctx.settings
    )
    text = f"已抽取 {done.quarter} 回访样本：{done.population} 件办结案件中抽取 {done.drawn} 件"
    return redirect(request, f"/console/callbacks/{done.draw_id}", flash=("ok", text))


def may_record(user: StaffUser, cb: Callback, case_unit: int) -> bool:
    """Mirror of ``record_callback``'s rule, for showing the form only."""
    return (
        cb.status == "pending"
        and user.role in feedback_service.SUPERVISION
        and user.unit_id not in (cb.unit_id, case_unit)
    )


DRAW_PAGE_LIMIT = 5000


@router.get("/callbacks/{draw_id}")
async def draw_page(
    request: Request, ctx: ReadingCtx, session: ReadSessionDep, draw_id: DbId
) -> Response:
    # 404 if not theirs; one draw's sample is a few per cent of a quarter's closed
    # cases, shown whole on one page.
    rows = await feedback_service.list_callbacks(
        session, ctx.user, draw_id, limit=DRAW_PAGE_LIMIT, offset=0
    )
    d = await session.get(CallbackDraw, draw_id)
    if d is None:
        raise NotFound(feedback_service.CALLBACK_NOT_FOUND)
    cases: dict[str, Complaint] = {}
    if rows:
        found = await session.execute(
            select(Complaint).where(Complaint.id.in_([cb.complaint_id for cb in rows]))
        )
        cases = {c.id: c for c in found.scalars()}
    unit_ids = {cb.unit_id for cb in rows} | {c.unit_id for c in cases.values()}
    units: dict[int, str] = {}
    if unit_ids:
        found_units = await session.execute(
            select(SupervisionUnit.id, SupervisionUnit.name).where(SupervisionUnit.id.in_(unit_ids))
        )
        units = {int(i): str(n) for i, n in found_units.all()}
    staff = await lookups.staff_names(session, (cb.staff_id for cb in rows))
    items: list[dict[str, Any]] = [
        {
            "cb": cb,
            "case": cases[cb.complaint_id],
            "unit": units.get(cb.unit_id, str(cb.unit_id)),
            "recorder": staff.get(cb.staff_id, "") if cb.staff_id else "",
            "may_record": may_record(ctx.user, cb, cases[cb.complaint_id].unit_id),
        }
        for cb in rows
    ]
    return render(
        request,
        "callbacks_draw.html",
        ctx=ctx,
        draw=d,
        items=items,
        pending=sum(1 for cb in rows if cb.status == "pending"),
        methods=METHODS,
        verdicts=VERDICTS,
    )


def _yes_no(form: FormData, name: str) -> bool | None:
    value = field(form, name)
    if value not in ("", "yes", "no"):
        raise BadRequest(f"「{LABELS[name]}」取值无效")
    return None if value == "" else value == "yes"


def record_payload(form: FormData) -> dict[str, Any]:
    """What a JSON client would send (``CallbackRecord`` judges it)."""
    reached = _yes_no(form, "reached")
    if reached is None:
        raise BadRequest("请选择是否联系上群众")
    data: dict[str, Any] = {
        "method": field(form, "method"),
        "reached": reached,
        "fake_closure": field(form, "fake_closure") == "1",
        "note": field(form, "note"),
    }
    resolved = _yes_no(form, "resolved")
    if resolved is not None:
        data["resolved"] = resolved
    if satisfaction := field(form, "satisfaction"):
        data["satisfaction"] = satisfaction
    return data


def error_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        if err.get("type") == "value_error":
            parts.append(str(err.get("msg", "")).removeprefix("Value error, "))
            continue
        loc = [str(x) for x in err.get("loc", ())]
        parts.append(f"「{LABELS.get(loc[-1], '内容') if loc else '内容'}」填写有误")
    return "；".join(parts) + "。"


async def _record(
    session: SessionDep, ctx: ConsoleContext, draw_id: int, callback_id: int, form: FormData
) -> str:
    cb = await session.get(Callback, callback_id)
    if cb is None or cb.draw_id != draw_id:
        raise NotFound(feedback_service.CALLBACK_NOT_FOUND)
    try:
        body = CallbackRecord.model_validate(record_payload(form))
    except ValidationError as exc:
        raise BadRequest(error_text(exc)) from exc
    await feedback_service.record_callback(session, ctx.user, callback_id, body, now=ctx.now)
    return "已记录回访结果" + ("，案件已重新办理" if body.fake_closure else "")


@router.post("/callbacks/{draw_id}/{callback_id}")
async def record(
    request: Request,
    ctx: Ctx,
    session: SessionDep,
    form: CsrfForm,
    draw_id: DbId,
    callback_id: DbId,
) -> Response:
    back = f"/console/callbacks/{draw_id}"
    try:
        text = await _record(session, ctx, draw_id, callback_id, form)
    except BadRequest as exc:
        # A form mistake: back to the list, saying what to fix (nothing was written).
        return redirect(request, f"{back}#cb-{callback_id}", flash=("error", exc.detail))
    return redirect(request, f"{back}#cb-{callback_id}", flash=("ok", text))
