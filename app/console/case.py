"""The case page and its action forms.

The page is built from the same case file as ``GET /api/v1/staff/complaints/{id}``
(scope, identity masking) and offers exactly the actions
``workflow_service.permitted_actions`` allows this user now; each form posts
to ``act()``, the API's one entry point, with the ``expected_version`` the page
was rendered with. When someone else acted first the page is shown again with
the fresh state and a 409: never a lost update.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.complaints.service import ComplaintNotFound
from app.console import evidence, lookups
from app.console.dependencies import (
    ConsoleContext,
    CsrfForm,
    Ctx,
    ReadingCsrfForm,
    ReadingCtx,
    field,
)
from app.console.forms import (
    ACTION_SPECS,
    SLOT_LABELS,
    action_payload,
    error_text,
    public_reply_supported,
)
from app.console.routing import console_router
from app.console.templating import redirect, render
from app.core import db
from app.core.deps import SessionDep, StoreDep
from app.core.errors import AppError, NotFound
from app.core.storage import MediaStore
from app.media import service as media_service
from app.media.service import Staged
from app.models import Department, Media, Region, SupervisionOrder
from app.supervision import service as supervision
from app.workflow import queue as workflow_queue
from app.workflow import service as workflow_service
from app.workflow.machine import Action
from app.workflow.schemas import ActionRequest, OrderCreate

router = console_router(prefix="/console")
CaseId = Annotated[str, Path(min_length=1, max_length=64)]
STALE = "案件已被他人处理，已显示最新状态"
# Internal event kinds the resident-facing label table does not name.
EVENT_LABELS = {
    "routed": "系统分流",
    "extension_requested": "申请延期",
    "supervision_order": "督办",
    "reclassified": "更正事项分类",
    "identity_viewed": "查看反映人身份",
}


def _pending_extension(events: list[Any]) -> int | None:
    """Days of a handler's extension request not yet granted (the same reading
    as the extend action: the latest request or grant decides)."""
    pending = [e for e in events if e.kind in ("extension_requested", "extended")]
    if pending and pending[-1].kind == "extension_requested":
        return int(pending[-1].data.get("days") or 0) or None
    return None


async def case_view(
    request: Request,
    ctx: ConsoleContext,
    session: AsyncSession,
    store: MediaStore,
    complaint_id: str,
    *,
    status_code: int = 200,
    flash: tuple[str, str] | None = None,
    open_action: str | None = None,
    form_values: dict[str, str] | None = None,
) -> Response:
    user, settings, now = ctx.user, ctx.settings, ctx.now
    row = await workflow_queue.load_visible(session, user, complaint_id)  # 404 out of scope
    complaint = row[0]
    case = await workflow_queue.case_file(session, user, complaint_id, now=now, settings=settings)
    events = list(await workflow_queue.all_events(session, complaint.id))
    this_round = workflow_queue.round_signatures(events)
    actions = workflow_service.permitted_actions(user, complaint)
    slots = [
        s
        for s in settings.signoff_slots
        if workflow_service.sign_refusal(user, s, this_round, settings) is None
    ]
    if not slots and Action.sign in actions:
        actions.remove(Action.sign)
    staff_ids = [e.actor_id for e in events if e.actor_kind == "staff"]
    names = await lookups.staff_names(session, [*staff_ids, case.cadre_id])
    media_rows = (
        (await session.execute(select(Media).where(Media.id.in_([m["id"] for m in case.media]))))
        .scalars()
        .all()
    )
    links = {m.id: await media_service.link(store, settings, m, now=now) for m in media_rows}
    orders = (
        (
            await session.execute(
                select(SupervisionOrder)
                .where(SupervisionOrder.complaint_id == complaint.id)
                .order_by(SupervisionOrder.id)
            )
        )
        .scalars()
        .all()
    )
    handler_unit = None
    if complaint.handler_department_code:
        dept = await session.get(Department, complaint.handler_department_code)
        region = await session.get(Region, complaint.handler_region_code or "")
        handler_unit = f"{region.name if region else ''}{dept.name if dept else ''}"
    return render(
        request,
        "case.html",
        ctx=ctx,
        handler_unit=handler_unit,
        event_labels=EVENT_LABELS,
        status_code=status_code,
        flash=flash,
        case=case,
        actions=actions,
        specs=ACTION_SPECS,
        slots=slots,
        slot_labels=SLOT_LABELS,
        signed={slot: names.get(who or 0, "—") for slot, who in this_round},
        names=names,
        links=links,
        orders=orders,
        pending_days=_pending_extension(events),
        public_reply=public_reply_supported(),
        open_action=open_action,
        form_values=form_values or {},
        cadres=(
            await lookups.cadres_of_unit(session, complaint.unit_id)
            if Action.assign in actions
            else []
        ),
        departments=await lookups.departments(session) if Action.transfer in actions else [],
        transfer_regions=(
            await lookups.transfer_regions(session) if Action.transfer in actions else []
        ),
        categories=(
            await lookups.categories(session)
            if any(a.value == "reclassify" for a in actions)
            else []
        ),
        channel_labels=lookups.CHANNEL_LABELS,
        card_labels=lookups.CARD_LABELS,
        priority_labels={p.value: label for p, label in lookups.PRIORITY_LABELS.items()},
        may_order=user.role.value in ("supervisor", "leader"),
    )


@router.get("/complaints/{complaint_id}")
async def case_page(
    request: Request, complaint_id: CaseId, ctx: Ctx, session: SessionDep, store: StoreDep
) -> Response:
    return await case_view(request, ctx, session, store, complaint_id)


@router.post("/complaints/{complaint_id}/actions/{action}")
async def act_page(
    request: Request,
    complaint_id: CaseId,
    action: Annotated[str, Path(max_length=32)],
    ctx: ReadingCtx,
    form: ReadingCsrfForm,
    store: StoreDep,
) -> Response:
    """The action in a writer session of its own, after its evidence files
    were checked and stored holding nothing (app/console/evidence.py)."""
    try:
        act = Action(action)
    except ValueError:
        raise NotFound("没有这个操作") from None
    values = {k: v for k, v in form.items() if isinstance(v, str)}

    async def again(status: int, flash: tuple[str, str], keep: bool = True) -> Response:
        # The page records who read a protected identity: a writer's session.
        async with db.write_session(request) as session:
            return await case_view(
                request,
                ctx,
                session,
                store,
                complaint_id,
                status_code=status,
                flash=flash,
                open_action=act.value if keep else None,
                form_values=values if keep else None,
            )

    try:
        body = ActionRequest.model_validate(action_payload(act, form))
    except ValidationError as exc:
        return await again(422, ("error", error_text(exc)))  # 404 first, out of scope
    staged: list[Staged] = []
    try:
        staged = await evidence.stage_files(store, ctx, form.getlist("evidence"))
        async with db.write_session(request) as session:
            uploaded = await evidence.record_files(session, ctx, staged)
            if uploaded:
                body = body.model_copy(
                    update={"media_ids": [*body.media_ids, *(m.id for m in uploaded)]}
                )
            await workflow_service.act(
                session, ctx.user, complaint_id, act, body, now=ctx.now, settings=ctx.settings
            )
    except workflow_service.StaleVersion:
        await evidence.discard(staged)
        return await again(409, ("warn", STALE), keep=False)
    except ComplaintNotFound:
        await evidence.discard(staged)
        raise
    except AppError as exc:
        await evidence.discard(staged)
        # The state table refuses an accept that someone else already made
        # (409) before the version is compared: a form rendered at an older
        # version means someone acted first, whatever the refusal says.
        async with db.read_session(request) as reader:
            row = await workflow_queue.load_visible(reader, ctx.user, complaint_id)
        if row[0].version != body.expected_version:
            return await again(409, ("warn", STALE), keep=False)
        return await again(exc.status_code, ("error", exc.detail))
    except BaseException:
        await evidence.discard(staged)
        raise
    done = ("ok", f"已{ACTION_SPECS[act.value].done if act.value in ACTION_SPECS else '办理'}")
    try:
        async with db.read_session(request) as reader:
            await workflow_queue.load_visible(reader, ctx.user, complaint_id)
    except ComplaintNotFound:
        # Escalated or transferred beyond this user's scope: back to the queue.
        return redirect(request, "/console/queue", flash=done)
    return redirect(request, f"/console/complaints/{complaint_id}", flash=done)


@router.post("/complaints/{complaint_id}/orders")
async def issue_order(
    request: Request,
    complaint_id: CaseId,
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
    store: StoreDep,
) -> Response:
    """督办单, through the same service as ``POST /api/v1/staff/supervision-orders``."""
    days = field(form, "deadline_days")
    try:
        body = OrderCreate.model_validate(
            {
                "complaint_id": complaint_id,
                "reason": field(form, "reason"),
                "deadline_days": int(days) if days.isdigit() and len(days) < 4 else days or None,
            }
        )
    except ValidationError as exc:
        await workflow_queue.load_visible(session, ctx.user, complaint_id)
        return await case_view(
            request,
            ctx,
            session,
            store,
            complaint_id,
            status_code=422,
            flash=("error", error_text(exc)),
            open_action="order",
        )
    try:
        async with session.begin_nested():
            await supervision.issue(
                session,
                ctx.user,
                body.complaint_id,
                reason=body.reason,
                deadline_days=body.deadline_days,
                now=ctx.now,
                settings=ctx.settings,
            )
    except ComplaintNotFound:
        raise
    except AppError as exc:
        return await case_view(
            request,
            ctx,
            session,
            store,
            complaint_id,
            status_code=exc.status_code,
            flash=("error", exc.detail),
        )
    return redirect(request, f"/console/complaints/{complaint_id}", flash=("ok", "督办单已下发"))
