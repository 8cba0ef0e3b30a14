"""Who may draft, review and see a village's disclosures.

Drafting: the village's clerk or committee members, staff of a supervision
unit whose region covers the village, or an admin. Publishing: a committee
member of that village who neither drafted nor last edited it, so every
publication has passed a second pair of eyes.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden
from app.models import Disclosure, StaffUser, SupervisionUnit
from app.models.enums import StaffRole
from app.regions.repository import PREFIX_LENGTH


async def may_author(session: AsyncSession, user: StaffUser, village: str) -> bool:
    """The village's clerk or committee, staff of a unit covering it, or an admin."""
    if user.role is StaffRole.admin:
        return True
    if user.role in (StaffRole.clerk, StaffRole.committee):
        # Committee members may draft too; they then cannot review their own draft.
        return user.region_code == village
    if user.role in (StaffRole.supervisor, StaffRole.leader, StaffRole.agent) and user.unit_id:
        unit = await session.get(SupervisionUnit, user.unit_id)
        if unit is not None:
            return village.startswith(unit.region_code[: PREFIX_LENGTH[unit.level]])
    return False


async def require_author(session: AsyncSession, user: StaffUser, village: str) -> None:
    if not await may_author(session, user, village):
        raise Forbidden("只有本村村务公开经办人或上级监督单位可以编辑本村公开")


def require_reviewer(user: StaffUser, d: Disclosure) -> None:
    if user.role is not StaffRole.committee or user.region_code != d.region_code:
        raise Forbidden("发布前须经本村村务监督委员会成员审核")
    if user.id in (d.author_id, d.last_editor_id):
        raise Forbidden("审核人不能是起草或修改人，请由另一位监委会成员审核")


async def staff_scope(session: AsyncSession, user: StaffUser) -> ColumnElement[bool]:
    if user.role is StaffRole.admin:
        return true()
    if user.role in (StaffRole.clerk, StaffRole.committee):
        return Disclosure.region_code == (user.region_code or "-")
    if user.unit_id:
        unit = await session.get(SupervisionUnit, user.unit_id)
        if unit is not None:
            return Disclosure.region_code.startswith(unit.region_code[: PREFIX_LENGTH[unit.level]])
    return false()
