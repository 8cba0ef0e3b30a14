from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Category, Complaint, ComplaintEvent, Department, Item, TaxonomyVersion


async def current_version(session: AsyncSession) -> TaxonomyVersion | None:
    stmt = select(TaxonomyVersion).where(TaxonomyVersion.is_current.is_(True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def categories(session: AsyncSession, version_id: int) -> Sequence[Category]:
    stmt = select(Category).where(Category.version_id == version_id).order_by(Category.position)
    return (await session.execute(stmt)).scalars().all()


async def items_with_department(session: AsyncSession, version_id: int) -> Sequence[Row[Item, str]]:
    stmt = (
        select(Item, Department.name)
        .join(Department, Department.code == Item.department_code)
        .where(Item.version_id == version_id)
        .order_by(Item.position)
    )
    return (await session.execute(stmt)).all()


async def item_by_code(session: AsyncSession, version_id: int, code: str) -> Item | None:
    stmt = select(Item).where(Item.version_id == version_id, Item.code == code)
    return (await session.execute(stmt)).scalar_one_or_none()


# The workflow's reclassify action (app/workflow/reclassify.py) appends a
# complaint event of this kind with data {"from_item_code": "0101",
# "to_item_code": "0102", ...}.
RECLASSIFIED = "reclassified"


async def corrections(session: AsyncSession) -> list[tuple[str, str]]:
    """(resident's text, corrected item code), the latest correction per case winning."""
    stmt = (
        select(ComplaintEvent.complaint_id, Complaint.content, ComplaintEvent.data)
        .join(Complaint, Complaint.id == ComplaintEvent.complaint_id)
        .where(ComplaintEvent.kind == RECLASSIFIED)
        .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
    )
    latest: dict[str, tuple[str, str]] = {}
    for complaint_id, content, data in (await session.execute(stmt)).all():
        new_item = data.get("to_item_code") if isinstance(data, dict) else None
        if isinstance(new_item, str) and content:
            latest[complaint_id] = (content, new_item)
    return list(latest.values())
