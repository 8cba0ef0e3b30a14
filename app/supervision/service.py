"""Supervision orders (督办单): by hand, and automatically on a red card.

An automatic order is raised once per case per overdue spell. The spell is
the missed due date, so the unique constraint (complaint, kind, spell) makes a
second worker's insert fail harmlessly instead of issuing a duplicate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import events
from app.core import locks
from app.core.chain import ChainConflict
from app.core.config import Settings
from app.core.errors import Forbidden
from app.models import Complaint, StaffUser, SupervisionOrder, SupervisionUnit
from app.models.enums import ComplaintStatus, StaffRole
from app.notifications import service as notify
from app.routing import calendar_service
from app.workflow import queue, scope

OPEN = [s for s in ComplaintStatus if s.is_open]


async def issue(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str,
    *,
    reason: str,
    deadline_days: int | None,
    now: datetime,
    settings: Settings,
) -> SupervisionOrder:
    """``deadline_days`` counts working days, like every other deadline: the
    order is due at the end of that working day (local time)."""
    if user.role not in (StaffRole.supervisor, StaffRole.leader):
        raise Forbidden("只有纪检干部可以下发督办单")
    row = await queue.load_visible(session, user, complaint_id)
    c = row[0]
    deadline_at = None
    if deadline_days:
        calendar = await calendar_service.load_calendar(session, settings)
        deadline_at = calendar.end_of_day(
            calendar.add_workdays(calendar.local_date(now), deadline_days)
        )
    order = SupervisionOrder(
        complaint_id=c.id,
        unit_id=c.unit_id,
        kind="manual",
        spell_due_at=None,
        issued_by=user.id,
        reason=reason,
        deadline_at=deadline_at,
        created_at=now,
    )
    session.add(order)
    await events.append(
        session,
        c,
        kind="supervision_order",
        public=False,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        note=reason,
        data={"kind": "manual"},
    )
    leaders = await notify.staff_of_unit(
        session, c.unit_id, [StaffRole.leader, StaffRole.supervisor]
    )
    notify.to_staff(
        session,
        leaders,
        complaint_id=c.id,
        kind="supervision_order",
        title="督办单",
        body=f"{c.tracking_no} 被督办：{reason}",
        now=now,
    )
    await session.flush()
    return order


async def orders_of(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str | None,
    *,
    limit: int,
    offset: int,
) -> list[SupervisionOrder]:
    """A case's orders, for whoever may see the case (404 otherwise); without a
    case, every order on the cases the caller may see, newest first."""
    stmt = select(SupervisionOrder)
    if complaint_id is not None:
        await queue.load_visible(session, user, complaint_id)
        stmt = stmt.where(SupervisionOrder.complaint_id == complaint_id).order_by(
            SupervisionOrder.id
        )
    else:
        stmt = (
            stmt.join(Complaint, Complaint.id == SupervisionOrder.complaint_id)
            .where(await scope.visible(session, user))
            .order_by(SupervisionOrder.id.desc())
        )
    rows = await session.execute(stmt.limit(limit).offset(offset))
    return list(rows.scalars())


async def sweep_red_cards(session: AsyncSession, *, now: datetime, limit: int = 200) -> int:
    """Raise the automatic order for every overdue open case that lacks one.

    Orders are unique per spell, so two sweepers cannot both raise one; the
    lock keeps the second from queueing behind the first's uncommitted
    inserts (and from racing it on the same case chains) meanwhile."""
    if not await locks.try_exclusive(session, "red-card-sweep"):
        return 0
    existing = select(SupervisionOrder.id).where(
        SupervisionOrder.complaint_id == Complaint.id,
        SupervisionOrder.kind == "automatic",
        SupervisionOrder.spell_due_at == Complaint.due_at,
    )
    stmt = (
        select(Complaint, SupervisionUnit.name)
        .join(SupervisionUnit, SupervisionUnit.id == Complaint.unit_id)
        .where(and_(Complaint.status.in_(OPEN), Complaint.due_at < now, ~existing.exists()))
        .order_by(Complaint.due_at)
        .limit(limit)
    )
    raised = 0
    leaders_of: dict[int, list[int]] = {}
    for c, unit_name in (await session.execute(stmt)).all():
        try:
            async with session.begin_nested():
                session.add(
                    SupervisionOrder(
                        complaint_id=c.id,
                        unit_id=c.unit_id,
                        kind="automatic",
                        spell_due_at=c.due_at,
                        issued_by=None,
                        reason=f"红牌：已超过办理期限（{c.due_at:%Y-%m-%d}）",
                        deadline_at=now + timedelta(days=3),
                        created_at=now,
                    )
                )
                await events.append(
                    session,
                    c,
                    kind="supervision_order",
                    public=False,
                    actor_kind="system",
                    actor_id=None,
                    at=now,
                    note="超期亮红牌，自动下发督办单",
                    data={"kind": "automatic", "spell_due_at": c.due_at.isoformat()},
                )
        except (IntegrityError, ChainConflict):
            continue  # another worker raised it first
        if c.unit_id not in leaders_of:  # one lookup per unit, not per case
            leaders_of[c.unit_id] = await notify.staff_of_unit(
                session, c.unit_id, [StaffRole.leader]
            )
        leaders = leaders_of[c.unit_id]
        notify.to_staff(
            session,
            leaders,
            complaint_id=c.id,
            kind="supervision_order",
            title="红牌督办",
            body=f"{unit_name}：{c.tracking_no} 已超期，已自动下发督办单",
            now=now,
        )
        raised += 1
    await session.flush()
    return raised
