from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import select

from app.core import urls
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep
from app.core.errors import Forbidden, NotFound
from app.core.pagination import PageParams, page_params
from app.core.replica import ReplicaSessionDep
from app.core.schemas import DbId
from app.models import Notification, SupervisionOrder
from app.models.enums import StaffRole
from app.notifications import service as notify
from app.staff.dependencies import CurrentStaff, ReadingStaff
from app.supervision import service as supervision
from app.workflow import intake, queue, reads, service
from app.workflow.machine import Action
from app.workflow.schemas import (
    ActionRequest,
    CaseFile,
    IntakeFiled,
    OfflineIntake,
    OrderCreate,
    OrderPage,
    OrderRead,
    QueuePage,
)

router = APIRouter(prefix="/staff", tags=["workflow"])
ComplaintId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/complaints", response_model=QueuePage)
async def list_queue(
    request: Request,
    user: ReadingStaff,
    session: ReplicaSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    page: Annotated[queue.QueuePageParams, Depends(queue.queue_page)],
    f: Annotated[queue.QueueFilter, Depends(queue.queue_filter)],
) -> QueuePage:
    now = clock.now()
    result = await queue.queue(
        session,
        user,
        f,
        now=now,
        settings=settings,
        limit=page.limit,
        offset=page.offset,
        after=page.after,
    )
    await reads.record(request, user, result.identity_reads, now=now)
    return QueuePage(items=result.items, next_cursor=result.next_cursor)


@router.post("/complaints", response_model=IntakeFiled, status_code=201)
async def offline_intake(
    body: OfflineIntake,
    user: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> IntakeFiled:
    """Offline intake (来访、来电、来信、走访、代办). The reporter may be sent as
    ``reporter_name``/``reporter_phone`` or, like online filing,
    ``contact_name``/``contact_phone``."""
    now = clock.now()
    done = await intake.register(session, user, body, now=now, settings=settings)
    case = await queue.case_file(session, user, done.complaint_id, now=now, settings=settings)
    return IntakeFiled(
        **case.model_dump(),
        query_code=done.query_code,
        tracking_url=urls.tracking_page(settings, case.tracking_no),
    )


@router.get("/complaints/{complaint_id}", response_model=CaseFile)
async def case_file(
    complaint_id: ComplaintId,
    user: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> CaseFile:
    return await queue.case_file(session, user, complaint_id, now=clock.now(), settings=settings)


@router.post("/complaints/{complaint_id}/actions/{action}", response_model=CaseFile)
async def act(
    complaint_id: ComplaintId,
    action: Action,
    body: ActionRequest,
    user: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> CaseFile:
    return await service.act(
        session, user, complaint_id, action, body, now=clock.now(), settings=settings
    )


def _order(o: SupervisionOrder) -> OrderRead:
    return OrderRead(
        id=o.id,
        complaint_id=o.complaint_id,
        unit_id=o.unit_id,
        kind=o.kind,
        reason=o.reason,
        issued_by=o.issued_by,
        spell_due_at=o.spell_due_at,
        deadline_at=o.deadline_at,
        created_at=o.created_at,
    )


@router.post("/supervision-orders", response_model=OrderRead, status_code=201)
async def issue_order(
    body: OrderCreate,
    user: CurrentStaff,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> OrderRead:
    order = await supervision.issue(
        session,
        user,
        body.complaint_id,
        reason=body.reason,
        deadline_days=body.deadline_days,
        now=clock.now(),
        settings=settings,
    )
    return _order(order)


@router.get("/supervision-orders", response_model=OrderPage)
async def list_orders(
    user: ReadingStaff,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    complaint_id: Annotated[str | None, Query(min_length=32, max_length=32)] = None,
) -> OrderPage:
    """``{items, next_cursor}``; ``complaint_id`` narrows to one case (optional)."""
    rows = await supervision.orders_of(
        session, user, complaint_id, limit=page.limit, offset=page.offset
    )
    return OrderPage(items=[_order(o) for o in rows], next_cursor=page.next_cursor(len(rows)))


def _notice(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "complaint_id": n.complaint_id,
        "created_at": n.created_at,
        "read_at": n.read_at,
    }


@router.get("/notices")
async def my_notices(
    user: ReadingStaff,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    unread: bool = False,
) -> dict[str, Any]:
    stmt = select(Notification).where(
        Notification.recipient_kind == "staff", Notification.recipient_id == user.id
    )
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    rows = (
        (
            await session.execute(
                stmt.order_by(Notification.id.desc()).limit(page.limit).offset(page.offset)
            )
        )
        .scalars()
        .all()
    )
    return {"items": [_notice(n) for n in rows], "next_cursor": page.next_cursor(len(rows))}


@router.post("/notices/{notice_id}/read", status_code=204)
async def mark_read(
    notice_id: DbId, user: CurrentStaff, session: SessionDep, clock: ClockDep
) -> None:
    n = await session.get(Notification, notice_id)
    if n is None or n.recipient_kind != "staff" or n.recipient_id != user.id:
        raise NotFound("通知不存在")
    n.read_at = n.read_at or clock.now()


@router.get("/notifications/failures")
async def delivery_failures(
    user: ReadingStaff,
    session: ReadSessionDep,
    settings: SettingsDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    """Messages to residents that failed, are being retried, or wait for WeChat
    to be configured (``waiting``: pending, sent once it is) — 三个100%: nothing
    silently lost."""
    if user.role not in (StaffRole.admin, StaffRole.supervisor, StaffRole.leader):
        raise Forbidden("无权查看")
    rows = await notify.failures(
        session, user, limit=page.limit, offset=page.offset, settings=settings
    )
    sendable = set(notify.sendable_kinds(settings))
    items = [
        {
            **_notice(n),
            "status": n.status,
            "waiting": n.status in ("pending", "retry") and n.kind not in sendable,
            "attempts": n.attempts,
            "last_error": n.last_error,
            "next_attempt_at": n.next_attempt_at,
        }
        for n in rows
    ]
    return {"items": items, "next_cursor": page.next_cursor(len(rows))}
