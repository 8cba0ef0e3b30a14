from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from sqlalchemy import Row, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import identity
from app.models import (
    Complaint,
    ComplaintEvent,
    Item,
    Media,
    Region,
    SupervisionUnit,
    TrackingCounter,
)
from app.models.enums import ComplaintStatus

OPEN_STATUSES = [s for s in ComplaintStatus if s.is_open]


async def next_counter(session: AsyncSession, day: date) -> int:
    """Gapless per-day sequence; the row lock is held only until commit."""
    stmt = (
        update(TrackingCounter)
        .where(TrackingCounter.day == day)
        .values(value=TrackingCounter.value + 1)
        .returning(TrackingCounter.value)
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    if value is not None:
        return int(value)
    try:
        async with session.begin_nested():
            session.add(TrackingCounter(day=day, value=1))
        return 1
    except IntegrityError:  # another filing created today's row first
        return int((await session.execute(stmt)).scalar_one())


async def open_cases_by_cadre(session: AsyncSession, staff_ids: Sequence[int]) -> Mapping[int, int]:
    if not staff_ids:
        return {}
    stmt = (
        select(Complaint.cadre_id, func.count())
        .where(Complaint.cadre_id.in_(staff_ids), Complaint.status.in_(OPEN_STATUSES))
        .group_by(Complaint.cadre_id)
    )
    return {int(cid): int(n) for cid, n in (await session.execute(stmt)).all() if cid is not None}


async def attached_media(session: AsyncSession, complaint_id: str) -> Sequence[Media]:
    stmt = (
        select(Media)
        .where(Media.attached_to == f"complaint:{complaint_id}")
        .order_by(Media.attached_at, Media.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def public_events(session: AsyncSession, complaint_id: str) -> Sequence[ComplaintEvent]:
    stmt = (
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == complaint_id, ComplaintEvent.public.is_(True))
        .order_by(ComplaintEvent.seq)
    )
    return (await session.execute(stmt)).scalars().all()


SummaryRow = Row[Complaint, str, str, str]


def _summary_select() -> Select[Complaint, str, str, str]:
    return (
        select(Complaint, Item.name, Region.name, SupervisionUnit.name)
        .join(Item, Item.id == Complaint.item_id)
        .join(Region, Region.code == Complaint.region_code)
        .join(SupervisionUnit, SupervisionUnit.id == Complaint.unit_id)
    )


async def mine(
    session: AsyncSession, citizen_id: int, *, limit: int, offset: int
) -> Sequence[SummaryRow]:
    stmt = (
        _summary_select()
        .where(identity.owned_condition(citizen_id))
        .order_by(Complaint.created_at.desc(), Complaint.id)
        .limit(limit)
        .offset(offset)
    )
    return (await session.execute(stmt)).all()


async def summary(session: AsyncSession, complaint_id: str) -> SummaryRow | None:
    stmt = _summary_select().where(Complaint.id == complaint_id)
    return (await session.execute(stmt)).one_or_none()


async def by_tracking_no(session: AsyncSession, tracking_no: str) -> Complaint | None:
    stmt = select(Complaint).where(Complaint.tracking_no == tracking_no)
    return (await session.execute(stmt)).scalar_one_or_none()
