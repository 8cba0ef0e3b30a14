"""Every query of the Open311 facade."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Complaint,
    ComplaintEvent,
    IntegratorKey,
    Item,
    Open311Token,
    Region,
    SupervisionUnit,
)
from app.models.enums import ComplaintStatus, RegionLevel

CLOSED = (ComplaintStatus.resolved, ComplaintStatus.closed, ComplaintStatus.rejected)


async def keys(session: AsyncSession, *, limit: int, offset: int) -> Sequence[IntegratorKey]:
    stmt = select(IntegratorKey).order_by(IntegratorKey.id).limit(limit).offset(offset)
    return (await session.execute(stmt)).scalars().all()


async def key_by_hash(session: AsyncSession, key_hash: str) -> IntegratorKey | None:
    stmt = select(IntegratorKey).where(IntegratorKey.key_hash == key_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


async def token(session: AsyncSession, value: str) -> Open311Token | None:
    return await session.get(Open311Token, value)


@dataclass(frozen=True, slots=True)
class RequestFilter:
    ids: Sequence[str] = ()
    service_codes: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    open: bool = True
    closed: bool = True


RequestRow = tuple[Complaint, str, str, str]


async def public_requests(
    session: AsyncSession, where: RequestFilter, *, limit: int
) -> Sequence[RequestRow]:
    """Cases anyone may see: never an accusation, never an anonymous filing.

    Ids override every other filter, as the specification says.
    """
    stmt = (
        select(Complaint, Item.name, SupervisionUnit.name, Region.full_name)
        .join(Item, Item.id == Complaint.item_id)
        .join(SupervisionUnit, SupervisionUnit.id == Complaint.unit_id)
        .join(Region, Region.code == Complaint.region_code)
        .where(Complaint.accusation.is_(False), Complaint.anonymous.is_(False))
    )
    if where.ids:
        stmt = stmt.where(Complaint.id.in_(list(where.ids)))
    else:
        if where.service_codes:
            stmt = stmt.where(Complaint.item_code.in_(list(where.service_codes)))
        if where.start is not None:
            stmt = stmt.where(Complaint.received_at >= where.start)
        if where.end is not None:
            stmt = stmt.where(Complaint.received_at <= where.end)
        if not where.open:
            stmt = stmt.where(Complaint.status.in_(CLOSED))
        if not where.closed:
            stmt = stmt.where(Complaint.status.not_in(CLOSED))
    stmt = stmt.order_by(Complaint.received_at.desc(), Complaint.id).limit(limit)
    return [(c, str(i), str(u), str(r)) for c, i, u, r in (await session.execute(stmt)).all()]


async def public_events(
    session: AsyncSession, complaint_ids: Sequence[str]
) -> Sequence[ComplaintEvent]:
    if not complaint_ids:
        return []
    stmt = (
        select(ComplaintEvent)
        .where(
            ComplaintEvent.complaint_id.in_(list(complaint_ids)),
            ComplaintEvent.public.is_(True),
        )
        .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
    )
    return (await session.execute(stmt)).scalars().all()


async def places(session: AsyncSession) -> Sequence[Region]:
    """Villages and the townships and counties above them, for address matching."""
    stmt = select(Region).where(
        Region.level.in_([RegionLevel.village, RegionLevel.township, RegionLevel.county])
    )
    return (await session.execute(stmt)).scalars().all()


async def located_near(
    session: AsyncSession, lat: float, lng: float, *, degrees: float, since: datetime
) -> Sequence[tuple[float, float, str]]:
    """Where public cases were reported near a point: (lat, lng, village code)."""
    stmt = (
        select(Complaint.location_lat, Complaint.location_lng, Complaint.region_code)
        .where(
            Complaint.accusation.is_(False),
            Complaint.anonymous.is_(False),
            Complaint.location_lat.between(lat - degrees, lat + degrees),
            Complaint.location_lng.between(lng - degrees, lng + degrees),
            Complaint.received_at >= since,
        )
        .limit(2000)
    )
    rows = (await session.execute(stmt)).all()
    return [(float(a), float(b), str(c)) for a, b, c in rows if a is not None and b is not None]
