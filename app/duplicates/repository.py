"""Every query of the duplicates feature."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Complaint, ComplaintEvent, ComplaintFollow, ComplaintMerge, Item, Region
from app.models.enums import ComplaintStatus

DONE = (ComplaintStatus.closed, ComplaintStatus.rejected)
# Newest first; enough for a village's open cases of one category in the window.
CANDIDATES = 100

CaseRow = tuple[Complaint, str, str]


def near(
    village_code: str, bounds: tuple[float, float, float, float] | None
) -> ColumnElement[bool]:
    if bounds is None:
        return Complaint.region_code == village_code
    lat0, lat1, lng0, lng1 = bounds
    return or_(
        Complaint.region_code == village_code,
        and_(
            Complaint.location_lat.between(lat0, lat1),
            Complaint.location_lng.between(lng0, lng1),
        ),
    )


async def candidates(session: AsyncSession, *conditions: ColumnElement[bool]) -> Sequence[CaseRow]:
    stmt = (
        select(Complaint, Item.name, Region.full_name)
        .join(Item, Item.id == Complaint.item_id)
        .join(Region, Region.code == Complaint.region_code)
        .where(*conditions)
        .order_by(Complaint.received_at.desc(), Complaint.id)
        .limit(CANDIDATES)
    )
    return [(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


def public_open(since: datetime) -> list[ColumnElement[bool]]:
    """Cases other residents may be shown: open, neither accusation nor anonymous."""
    return [
        Complaint.status.not_in(DONE),
        Complaint.anonymous.is_(False),
        Complaint.accusation.is_(False),
        Complaint.received_at >= since,
    ]


async def latest_public_events(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, ComplaintEvent]:
    if not ids:
        return {}
    last = (
        select(ComplaintEvent.complaint_id, func.max(ComplaintEvent.seq).label("seq"))
        .where(ComplaintEvent.complaint_id.in_(ids), ComplaintEvent.public.is_(True))
        .group_by(ComplaintEvent.complaint_id)
        .subquery()
    )
    stmt = select(ComplaintEvent).join(
        last,
        and_(ComplaintEvent.complaint_id == last.c.complaint_id, ComplaintEvent.seq == last.c.seq),
    )
    return {e.complaint_id: e for e in (await session.execute(stmt)).scalars()}


async def follower_counts(session: AsyncSession, ids: Sequence[str]) -> dict[str, int]:
    if not ids:
        return {}
    stmt = (
        select(ComplaintFollow.complaint_id, func.count())
        .where(ComplaintFollow.complaint_id.in_(ids))
        .group_by(ComplaintFollow.complaint_id)
    )
    return {cid: int(n) for cid, n in (await session.execute(stmt)).all()}


async def followed_by(session: AsyncSession, citizen_id: int, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    stmt = select(ComplaintFollow.complaint_id).where(
        ComplaintFollow.citizen_id == citizen_id, ComplaintFollow.complaint_id.in_(ids)
    )
    return set((await session.execute(stmt)).scalars())


async def find_follow(
    session: AsyncSession, complaint_id: str, citizen_id: int
) -> ComplaintFollow | None:
    stmt = select(ComplaintFollow).where(
        ComplaintFollow.complaint_id == complaint_id, ComplaintFollow.citizen_id == citizen_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def unfollow(session: AsyncSession, complaint_id: str, citizen_id: int) -> None:
    await session.execute(
        delete(ComplaintFollow).where(
            ComplaintFollow.complaint_id == complaint_id, ComplaintFollow.citizen_id == citizen_id
        )
    )


async def children(session: AsyncSession, parent_id: str) -> list[tuple[str, str]]:
    stmt = (
        select(Complaint.id, Complaint.tracking_no)
        .join(ComplaintMerge, ComplaintMerge.child_id == Complaint.id)
        .where(ComplaintMerge.parent_id == parent_id)
        .order_by(ComplaintMerge.merged_at)
    )
    return [(r[0], r[1]) for r in (await session.execute(stmt)).all()]


async def merges_of(session: AsyncSession, child_ids: Sequence[str]) -> dict[str, str]:
    if not child_ids:
        return {}
    stmt = select(ComplaintMerge.child_id, ComplaintMerge.parent_id).where(
        ComplaintMerge.child_id.in_(child_ids)
    )
    return {c: p for c, p in (await session.execute(stmt)).all()}
