"""The inbox: what waits for this user.

* staff notices (``GET /api/v1/staff/notices``), marked read one by one;
* supervision orders (督办单) on the cases this user may see;
* extension requests waiting for approval, on cases in scope;
* resident notifications that failed or are being retried
  (``GET /api/v1/staff/notifications/failures``, same roles, same service).

Every list is scoped by ``app/workflow/scope.py``, as the API's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from sqlalchemy import and_, select
from sqlalchemy.orm import aliased
from starlette.responses import Response

from app.console.dependencies import CsrfForm, Ctx, ReadingCtx
from app.console.routing import console_router
from app.console.templating import redirect, render
from app.core.deps import ReadSessionDep, SessionDep
from app.core.errors import NotFound
from app.core.schemas import DB_INT_MAX
from app.models import Complaint, ComplaintEvent, Notification, SupervisionOrder
from app.models.enums import StaffRole
from app.notifications import service as notify
from app.workflow import scope
from app.workflow.queue import IS_OPEN

router = console_router(prefix="/console")

LIST_SIZE = 30
# The roles GET /staff/notifications/failures serves.
FAILURE_READERS = (StaffRole.admin, StaffRole.supervisor, StaffRole.leader)
FAILURE_STATUS = {
    "dead": "投递失败",
    "retry": "重试中",
    "skipped": "未发送",
    "pending": "等待配置",
}


@router.get("/inbox")
async def inbox(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    user = ctx.user
    notices = (
        (
            await session.execute(
                select(Notification)
                .where(Notification.recipient_kind == "staff", Notification.recipient_id == user.id)
                .order_by(Notification.read_at.is_not(None), Notification.id.desc())
                .limit(LIST_SIZE)
            )
        )
        .scalars()
        .all()
    )
    visible = await scope.visible(session, user)
    orders = (
        await session.execute(
            select(SupervisionOrder, Complaint.tracking_no)
            .join(Complaint, Complaint.id == SupervisionOrder.complaint_id)
            .where(visible, IS_OPEN)
            .order_by(SupervisionOrder.id.desc())
            .limit(LIST_SIZE)
        )
    ).all()
    later = aliased(ComplaintEvent)
    granted = (
        select(later.id)
        .where(
            later.complaint_id == ComplaintEvent.complaint_id,
            later.kind.in_(["extended", "extension_requested"]),
            later.seq > ComplaintEvent.seq,
        )
        .exists()
    )
    extensions = (
        await session.execute(
            select(ComplaintEvent, Complaint.tracking_no, Complaint.due_at)
            .join(Complaint, Complaint.id == ComplaintEvent.complaint_id)
            .where(
                visible,
                IS_OPEN,
                and_(ComplaintEvent.kind == "extension_requested", ~granted),
            )
            .order_by(ComplaintEvent.created_at)
            .limit(LIST_SIZE)
        )
    ).all()
    failures = (
        await notify.failures(session, user, limit=LIST_SIZE, offset=0, settings=ctx.settings)
        if user.role in FAILURE_READERS
        else []
    )
    waiting = (
        await notify.waiting_count(session, ctx.settings, user)
        if user.role in FAILURE_READERS
        else 0
    )
    tracking = {}
    if failures:
        ids = {n.complaint_id for n in failures if n.complaint_id}
        tracking = {
            cid: no
            for cid, no in await session.execute(
                select(Complaint.id, Complaint.tracking_no).where(Complaint.id.in_(ids))
            )
        }
    return render(
        request,
        "inbox.html",
        ctx=ctx,
        notices=notices,
        orders=orders,
        extensions=extensions,
        failures=failures,
        show_failures=user.role in FAILURE_READERS,
        failure_status=FAILURE_STATUS,
        waiting=waiting,
        tracking=tracking,
    )


@router.post("/inbox/notices/{notice_id}/read")
async def mark_read(
    request: Request,
    notice_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    ctx: Ctx,
    form: CsrfForm,
    session: SessionDep,
) -> Response:
    n = await session.get(Notification, notice_id)
    if n is None or n.recipient_kind != "staff" or n.recipient_id != ctx.user.id:
        raise NotFound("通知不存在")
    n.read_at = n.read_at or ctx.now
    return redirect(request, "/console/inbox", flash=("ok", "已标为已读"))
