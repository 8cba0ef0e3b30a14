"""Staff endpoints for units and, for administrators, routing data and the calendar."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import select

from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep
from app.core.pagination import PageParams, page_params
from app.core.schemas import DATE_MAX, DATE_MIN, DbId
from app.models import CalendarDay, SupervisionUnit
from app.regions import repository as regions_repository
from app.regions import service as regions_service
from app.routing import admin_service, calendar_service
from app.routing import service as routing_service
from app.routing.calendar import library_lookup, library_years
from app.routing.schemas import (
    CalendarDayRead,
    CalendarYearImport,
    CalendarYearRead,
    DesignationCreate,
    DesignationRead,
    OverrideCreate,
    OverrideRead,
    RouteDecisionRead,
    RoutePreviewRequest,
    UnitPage,
    UnitRead,
)
from app.staff.dependencies import AdminStaff, CurrentStaff, ReadingAdmin, ReadingStaff

router = APIRouter(prefix="/staff", tags=["routing"])


@router.get("/units", response_model=UnitPage)
async def list_units(
    _: ReadingStaff,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    region_code: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
) -> UnitPage:
    stmt = select(SupervisionUnit).order_by(SupervisionUnit.code)
    if region_code:
        path = await regions_service.get_chain(session, region_code)
        prefix = region_code[: regions_repository.PREFIX_LENGTH[path[-1].level]]
        stmt = stmt.where(SupervisionUnit.region_code.startswith(prefix, autoescape=True))
    rows = (await session.execute(stmt.limit(page.limit).offset(page.offset))).scalars().all()
    return UnitPage(
        items=[UnitRead.model_validate(u) for u in rows], next_cursor=page.next_cursor(len(rows))
    )


@router.post("/routing/preview", response_model=RouteDecisionRead)
async def preview_route(
    body: RoutePreviewRequest,
    _: CurrentStaff,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> RouteDecisionRead:
    """Where a complaint on this item in this region would go, and why."""
    item = await routing_service.current_item(session, body.item_code, settings=settings)
    d = await routing_service.decide(
        session,
        item=item,
        region_code=body.region_code,
        received_at=body.received_at or clock.now(),
        settings=settings,
        accusation=body.accusation,
        accused_level=body.accused_level,
    )
    unit = await session.get(SupervisionUnit, d.unit.id)
    return RouteDecisionRead(
        unit=UnitRead.model_validate(unit),
        department_code=d.department_code,
        department_region_code=d.department_region_code,
        cadre_id=d.cadre_id,
        tier=d.tier,
        time_limit_days=d.time_limit_days,
        accept_due_at=d.accept_due_at,
        due_at=d.due_at,
        override_id=d.override_id,
        trace=list(d.trace),
        warnings=list(d.warnings),
    )


@router.get("/routing/overrides", response_model=list[OverrideRead])
async def list_overrides(
    _: ReadingAdmin,
    session: ReadSessionDep,
    item_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    include_revoked: bool = False,
) -> list[OverrideRead]:
    rows = await admin_service.list_overrides(
        session, item_code=item_code, include_revoked=include_revoked
    )
    return [OverrideRead.model_validate(r) for r in rows]


@router.post("/routing/overrides", response_model=OverrideRead, status_code=201)
async def create_override(
    body: OverrideCreate, admin: AdminStaff, session: SessionDep, clock: ClockDep
) -> OverrideRead:
    rule = await admin_service.create_override(
        session,
        item_code=body.item_code,
        region_code=body.region_code,
        unit_code=body.unit_code,
        reason=body.reason,
        actor=admin.username,
        now=clock.now(),
    )
    return OverrideRead.model_validate(rule)


@router.delete("/routing/overrides/{override_id}", response_model=OverrideRead)
async def revoke_override(
    override_id: Annotated[DbId, Path()], admin: AdminStaff, session: SessionDep, clock: ClockDep
) -> OverrideRead:
    rule = await admin_service.revoke_override(
        session, override_id, actor=admin.username, now=clock.now()
    )
    return OverrideRead.model_validate(rule)


@router.get("/routing/designated-cadres", response_model=list[DesignationRead])
async def list_designations(
    _: ReadingAdmin, session: ReadSessionDep, unit_code: str | None = None
) -> list[DesignationRead]:
    rows = await admin_service.list_designations(session, unit_code=unit_code)
    return [DesignationRead.model_validate(r) for r in rows]


@router.post("/routing/designated-cadres", response_model=DesignationRead, status_code=201)
async def designate(
    body: DesignationCreate, admin: AdminStaff, session: SessionDep, clock: ClockDep
) -> DesignationRead:
    row = await admin_service.designate(
        session,
        unit_code=body.unit_code,
        item_code=body.item_code,
        username=body.username,
        actor=admin.username,
        now=clock.now(),
    )
    return DesignationRead.model_validate(row)


@router.delete("/routing/designated-cadres/{designation_id}", response_model=DesignationRead)
async def revoke_designation(
    designation_id: Annotated[DbId, Path()],
    admin: AdminStaff,
    session: SessionDep,
    clock: ClockDep,
) -> DesignationRead:
    row = await admin_service.revoke_designation(
        session, designation_id, actor=admin.username, now=clock.now()
    )
    return DesignationRead.model_validate(row)


# The years any date in this service may fall in (app.core.schemas).
Year = Annotated[int, Path(ge=DATE_MIN.year, le=DATE_MAX.year, description="e.g. 2027")]


@router.get("/calendar/{year}", response_model=CalendarYearRead)
async def get_calendar(year: Year, _: ReadingStaff, session: ReadSessionDep) -> CalendarYearRead:
    admin_rows = {
        r.day: r
        for r in (
            await session.execute(
                select(CalendarDay).where(
                    CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31))
                )
            )
        ).scalars()
    }
    days: list[CalendarDayRead] = []
    day = date(year, 1, 1)
    while day.year == year:
        if day in admin_rows:
            r = admin_rows[day]
            if r.is_workday != (day.weekday() < 5):
                days.append(
                    CalendarDayRead(day=day, is_workday=r.is_workday, source="admin", note=r.note)
                )
        else:
            verdict = library_lookup(day)
            if verdict is not None and verdict != (day.weekday() < 5):
                days.append(CalendarDayRead(day=day, is_workday=verdict, source="library"))
        day += timedelta(days=1)
    known = bool(admin_rows) or year in library_years()
    return CalendarYearRead(year=year, known=known, days=days)


@router.put("/calendar/{year}", response_model=CalendarYearRead)
async def put_calendar(
    year: Year, body: CalendarYearImport, admin: AdminStaff, session: SessionDep, clock: ClockDep
) -> CalendarYearRead:
    """Replace a year's schedule with the State Council's published one."""
    entries = calendar_service.parse_schedule(
        {"year": year, "holidays": body.holidays, "workdays": body.workdays}
    )
    await calendar_service.import_schedule(session, entries, actor=admin.username, now=clock.now())
    return await get_calendar(year, admin, session)
