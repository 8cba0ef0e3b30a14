"""Who may see which cases, as SQL conditions (never a filter after loading).

* supervisors and leaders: their unit's cases; a commission also sees every
  case in its region (the units below it);
* handlers: only cases transferred to their department in their region;
* agents: the cases they filed;
* administrators: everything.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Complaint, StaffUser, SupervisionUnit
from app.models.enums import StaffRole, UnitKind
from app.regions.repository import PREFIX_LENGTH


async def visible(session: AsyncSession, user: StaffUser) -> ColumnElement[bool]:
    if user.role is StaffRole.admin:
        return true()
    if user.role is StaffRole.handler:
        if not user.department_code or not user.region_code:
            return false()
        return and_(
            Complaint.handler_department_code == user.department_code,
            Complaint.handler_region_code == user.region_code,
        )
    if user.role is StaffRole.agent:
        return Complaint.filed_by_staff_id == user.id
    if user.unit_id is None:
        return false()
    unit = await session.get(SupervisionUnit, user.unit_id)
    if unit is None:
        return false()
    if unit.kind is UnitKind.commission:
        prefix = unit.region_code[: PREFIX_LENGTH[unit.level]]
        return or_(Complaint.unit_id == unit.id, Complaint.region_code.startswith(prefix))
    return Complaint.unit_id == unit.id


def sees_identity(user: StaffUser, complaint: Complaint) -> bool:
    """An accuser's identity stays with the supervision side, never the department."""
    if complaint.anonymous:
        return False
    if user.role is StaffRole.handler:
        return not complaint.accusation
    return True
