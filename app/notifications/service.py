"""Writing notices into the outbox, in the transaction of the change itself."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import identity
from app.models import Complaint, Notification, StaffUser
from app.models.enums import StaffRole
from app.workflow import scope


def to_citizen(
    session: AsyncSession, complaint: Complaint, *, kind: str, title: str, body: str, now: datetime
) -> None:
    """A WeChat subscribe message to the resident (anonymous residents too: it goes
    to their own WeChat, not to staff).

    On a protected case the row names no recipient: delivery finds the openid
    in the case's sealed identity, so the outbox does not tie case to citizen.
    """
    notice = citizen_notice(complaint, kind=kind, title=title, body=body, now=now)
    if notice is not None:
        session.add(notice)


def citizen_notice(
    complaint: Complaint, *, kind: str, title: str, body: str, now: datetime
) -> Notification | None:
    """The row ``to_citizen`` adds, for a writer that inserts it itself
    (app/complaints/filing_sql.py); None when no resident filed the case."""
    if not identity.has_citizen(complaint):
        return None
    return Notification(
        recipient_kind="citizen",
        recipient_id=complaint.citizen_id,  # NULL on a protected case
        complaint_id=complaint.id,
        kind=kind,
        title=title[:64],
        body=body,
        channel="wechat_subscribe",
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def to_staff(
    session: AsyncSession,
    staff_ids: Iterable[int],
    *,
    complaint_id: str | None,
    kind: str,
    title: str,
    body: str,
    now: datetime,
) -> None:
    """In-app notices: visible at once in the staff member's notice list."""
    for sid in set(staff_ids):
        session.add(
            Notification(
                recipient_kind="staff",
                recipient_id=sid,
                complaint_id=complaint_id,
                kind=kind,
                title=title[:64],
                body=body,
                channel="in_app",
                status="sent",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                sent_at=now,
            )
        )


async def staff_of_unit(
    session: AsyncSession, unit_id: int, roles: Iterable[StaffRole]
) -> list[int]:
    stmt = select(StaffUser.id).where(
        StaffUser.unit_id == unit_id, StaffUser.role.in_(list(roles)), StaffUser.active.is_(True)
    )
    return [int(i) for i in (await session.execute(stmt)).scalars()]


async def handlers_of(session: AsyncSession, department_code: str, region_code: str) -> list[int]:
    stmt = select(StaffUser.id).where(
        StaffUser.role == StaffRole.handler,
        StaffUser.department_code == department_code,
        StaffUser.region_code == region_code,
        StaffUser.active.is_(True),
    )
    return [int(i) for i in (await session.execute(stmt)).scalars()]


FAILED = ("dead", "retry", "skipped")


async def failures(
    session: AsyncSession, user: StaffUser, *, limit: int, offset: int
) -> list[Notification]:
    """Residents' messages that failed or are being retried, for the cases the
    caller may see (notices carry tracking numbers and reasons)."""
    stmt = (
        select(Notification)
        .join(Complaint, Complaint.id == Notification.complaint_id)
        .where(
            Notification.recipient_kind == "citizen",
            Notification.status.in_(FAILED),
            await scope.visible(session, user),
        )
        .order_by(Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(stmt)).scalars())
