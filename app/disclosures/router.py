from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import OptionalCitizen
from app.core.boundary import FORM_OVERHEAD_BYTES, body_limit
from app.core.config import Settings
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, StoreDep
from app.core.errors import BadRequest, PayloadTooLarge
from app.core.pagination import PageParams, page_params
from app.core.schemas import DB_INT_MAX, DbId
from app.core.storage import MediaStore
from app.disclosures import search, service, views
from app.disclosures.schemas import (
    Correct,
    DisclosureCreate,
    DisclosurePage,
    DisclosurePatch,
    DisclosureRead,
    Publish,
    StaffDisclosureRead,
    Withdraw,
)
from app.disclosures.xlsx import MAX_XLSX_BYTES
from app.models import Disclosure
from app.models.enums import DisclosureCategory, DisclosureStatus
from app.staff.dependencies import CurrentStaff, ReadingStaff

router = APIRouter(tags=["disclosures"])
DisclosureId = Annotated[DbId, Path()]


@router.get(
    "/disclosures",
    response_model=DisclosurePage,
    # A token is optional here (it only picks the village): say so to clients.
    openapi_extra={"security": [{}]},
)
async def list_disclosures(
    session: ReadSessionDep,
    citizen: OptionalCitizen,
    page: Annotated[PageParams, Depends(page_params)],
    region_code: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    category: DisclosureCategory | None = None,
    period: Annotated[str | None, Query(pattern=r"^20\d\d(-(0[1-9]|1[0-2]|Q[1-4]))?$")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
) -> DisclosurePage:
    """Published disclosures; without region_code, the resident's own village."""
    code = region_code or (citizen.region_code if citizen else None)
    if code is None:
        raise BadRequest("请先扫描本村二维码或选择村（社区）")
    found = await search.public_list(
        session,
        region_code=code,
        category=category,
        period=period,
        q=q,
        limit=page.limit,
        offset=page.offset,
    )
    names = await views.region_names(session, [d.region_code for d in found])
    return DisclosurePage(
        items=[views.brief(d, names.get(d.region_code, d.region_code)) for d in found],
        next_cursor=page.next_cursor(len(found)),
    )


@router.get("/disclosures/{disclosure_id}", response_model=DisclosureRead)
async def get_disclosure(
    disclosure_id: DisclosureId,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> DisclosureRead:
    d = await service.get_public(session, disclosure_id, count_view=True)
    return await views.read(session, store, settings, d, now=clock.now(), staff=False)


@router.get("/staff/disclosures", response_model=DisclosurePage)
async def staff_list(
    user: ReadingStaff,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    region_code: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    status: DisclosureStatus | None = None,
) -> DisclosurePage:
    found = await service.staff_list(
        session, user, region_code=region_code, status=status, limit=page.limit, offset=page.offset
    )
    names = await views.region_names(session, [d.region_code for d in found])
    return DisclosurePage(
        items=[views.brief(d, names.get(d.region_code, d.region_code)) for d in found],
        next_cursor=page.next_cursor(len(found)),
    )


@dataclass(frozen=True, slots=True)
class StaffView:
    """What every staff endpoint needs to answer with the disclosure it touched."""

    session: AsyncSession
    store: MediaStore
    settings: Settings
    now: datetime

    async def __call__(self, d: Disclosure) -> StaffDisclosureRead:
        out = await views.read(self.session, self.store, self.settings, d, now=self.now, staff=True)
        assert isinstance(out, StaffDisclosureRead)
        return out


async def staff_view(
    session: SessionDep, store: StoreDep, settings: SettingsDep, clock: ClockDep
) -> StaffView:
    return StaffView(session, store, settings, clock.now())


ViewDep = Annotated[StaffView, Depends(staff_view)]


@router.get("/staff/disclosures/{disclosure_id}", response_model=StaffDisclosureRead)
async def staff_get(
    disclosure_id: DisclosureId,
    user: ReadingStaff,
    session: ReadSessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> StaffDisclosureRead:
    d = await service.get_for_staff(session, user, disclosure_id)
    return await StaffView(session, store, settings, clock.now())(d)


@router.post("/staff/disclosures", response_model=StaffDisclosureRead, status_code=201)
async def create(
    body: DisclosureCreate,
    user: CurrentStaff,
    session: SessionDep,
    view: ViewDep,
) -> StaffDisclosureRead:
    d = await service.create(session, user, body, now=view.now)
    return await view(d)


@router.patch("/staff/disclosures/{disclosure_id}", response_model=StaffDisclosureRead)
async def patch(
    disclosure_id: DisclosureId,
    body: DisclosurePatch,
    user: CurrentStaff,
    session: SessionDep,
    view: ViewDep,
) -> StaffDisclosureRead:
    d = await service.patch(session, user, disclosure_id, body, now=view.now)
    return await view(d)


@router.post("/staff/disclosures/{disclosure_id}/publish", response_model=StaffDisclosureRead)
async def publish(
    disclosure_id: DisclosureId,
    body: Publish,
    user: CurrentStaff,
    session: SessionDep,
    view: ViewDep,
) -> StaffDisclosureRead:
    d = await service.publish(session, user, disclosure_id, body, now=view.now)
    return await view(d)


@router.post("/staff/disclosures/{disclosure_id}/withdraw", response_model=StaffDisclosureRead)
async def withdraw(
    disclosure_id: DisclosureId,
    body: Withdraw,
    user: CurrentStaff,
    session: SessionDep,
    view: ViewDep,
) -> StaffDisclosureRead:
    d = await service.withdraw(session, user, disclosure_id, body, now=view.now)
    return await view(d)


@router.post(
    "/staff/disclosures/{disclosure_id}/correct",
    response_model=StaffDisclosureRead,
    status_code=201,
)
async def correct(
    disclosure_id: DisclosureId,
    body: Correct,
    user: CurrentStaff,
    session: SessionDep,
    view: ViewDep,
) -> StaffDisclosureRead:
    d = await service.correct(session, user, disclosure_id, body, now=view.now)
    return await view(d)


@router.post("/staff/disclosures/{disclosure_id}/rows.xlsx", response_model=StaffDisclosureRead)
@body_limit(lambda _: MAX_XLSX_BYTES + FORM_OVERHEAD_BYTES)
async def import_rows(
    disclosure_id: DisclosureId,
    user: CurrentStaff,
    session: SessionDep,
    view: ViewDep,
    file: Annotated[UploadFile, File(description="the rows as an .xlsx sheet, header in row 1")],
    expected_version: Annotated[int, Form(ge=1, le=DB_INT_MAX)],
    opening_balance: Annotated[Decimal | None, Form(max_digits=14, decimal_places=2)] = None,
    closing_balance: Annotated[Decimal | None, Form(max_digits=14, decimal_places=2)] = None,
) -> StaffDisclosureRead:
    """Replaces a draft's rows; a sheet with any bad row is rejected whole."""
    data = await file.read(MAX_XLSX_BYTES + 1)
    if len(data) > MAX_XLSX_BYTES:
        raise PayloadTooLarge(f"表格不能超过 {MAX_XLSX_BYTES // (1024 * 1024)} MB")
    d = await service.import_rows(
        session,
        user,
        disclosure_id,
        data,
        expected_version=expected_version,
        opening_balance=opening_balance,
        closing_balance=closing_balance,
        now=view.now,
    )
    return await view(d)
