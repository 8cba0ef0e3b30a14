"""A reminder to rate (满意度评价): once per handling round, to a resident whose
case was resolved some days ago and who has not rated it yet. The rating is
what the monthly analysis and the red and black lists stand on; one polite
reminder, never a stream of them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import locks
from app.core.config import Settings
from app.models import Complaint, Notification, Rating
from app.models.enums import ComplaintStatus
from app.notifications import service as notify

KIND = "rating_reminder"


async def remind(
    session: AsyncSession, *, now: datetime, settings: Settings, limit: int = 200
) -> int:
    """Write the reminders due now into the outbox; how many.

    One worker at a time: two workers reading "not reminded yet" side by
    side would both write the reminder. The lock is taken before the read,
    so the next holder sees the reminders the last one committed."""
    if not await locks.try_exclusive(session, "rating-reminders"):
        return 0
    cutoff = now - timedelta(days=settings.rating_reminder_days)
    rated = (
        select(Rating.id)
        .where(Rating.complaint_id == Complaint.id, Rating.created_at >= Complaint.resolved_at)
        .exists()
    )
    reminded = (
        select(Notification.id)
        .where(
            Notification.complaint_id == Complaint.id,
            Notification.kind == KIND,
            Notification.created_at >= Complaint.resolved_at,
        )
        .exists()
    )
    stmt = (
        select(Complaint)
        .where(
            Complaint.status.in_([ComplaintStatus.resolved, ComplaintStatus.closed]),
            Complaint.resolved_at.is_not(None),
            Complaint.resolved_at <= cutoff,
            Complaint.historical.is_(False),
            or_(Complaint.citizen_id.is_not(None), Complaint.owner_index.is_not(None)),
            ~rated,
            ~reminded,
        )
        .order_by(Complaint.resolved_at)
        .limit(limit)
    )
    cases = list((await session.execute(stmt)).scalars())
    for c in cases:
        notify.to_citizen(
            session,
            c,
            kind=KIND,
            title="请评价办理结果",
            body=f"您反映的问题（{c.tracking_no}）已办结，欢迎在小程序中对办理结果进行评价。",
            now=now,
            slots={"tip": "请对办理结果进行评价"},
        )
    await session.flush()
    return len(cases)
