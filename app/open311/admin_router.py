"""``/api/v1/staff/integrators``: administrators issue, list and revoke the api
keys outside systems file with through Open311."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep
from app.core.pagination import PageParams, page_params
from app.core.schemas import DB_INT_MAX
from app.models import StaffUser
from app.models.enums import StaffRole
from app.open311 import keys
from app.open311.schemas import IntegratorCreate, IntegratorIssued, IntegratorPage, IntegratorRead
from app.staff.dependencies import ReadingAdmin, require_roles

router = APIRouter(prefix="/staff/integrators", tags=["open311"])
Admin = Annotated[StaffUser, Depends(require_roles(StaffRole.admin))]
IntegratorId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]


@router.post("", response_model=IntegratorIssued, status_code=201)
async def issue_key(
    body: IntegratorCreate,
    user: Admin,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> IntegratorIssued:
    return await keys.issue(session, body=body, by=user, settings=settings, now=clock.now())


@router.get("", response_model=IntegratorPage)
async def list_keys(
    user: ReadingAdmin, session: ReadSessionDep, page: Annotated[PageParams, Depends(page_params)]
) -> IntegratorPage:
    items = await keys.listing(session, limit=page.limit, offset=page.offset)
    return IntegratorPage(items=items, next_cursor=page.next_cursor(len(items)))


@router.post("/{integrator_id}/revoke", response_model=IntegratorRead)
async def revoke_key(
    integrator_id: IntegratorId, user: Admin, session: SessionDep, clock: ClockDep
) -> IntegratorRead:
    return await keys.revoke(session, integrator_id, by=user, now=clock.now())
