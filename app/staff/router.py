from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.core.deps import ClockDep, SessionDep, TokensDep
from app.core.pagination import PageParams, page_params
from app.core.responses import error_response
from app.models import SupervisionUnit
from app.staff import service
from app.staff.dependencies import AdminStaff, CurrentStaff
from app.staff.schemas import LoginRequest, StaffCreate, StaffMe, StaffRead, TokenResponse

router = APIRouter(prefix="/staff", tags=["staff"])


@router.post(
    "/auth/login",
    response_model=TokenResponse,
    responses={401: {"description": "wrong credentials"}, 403: {"description": "locked"}},
)
async def login(
    body: LoginRequest, session: SessionDep, tokens: TokensDep, clock: ClockDep
) -> TokenResponse | JSONResponse:
    now = clock.now()
    outcome = await service.authenticate(
        session, username=body.username, password=body.password, now=now
    )
    if outcome.error is not None or outcome.user is None:
        # Returned, not raised: the failure count must be committed.
        assert outcome.error is not None
        return error_response(outcome.error)
    user = outcome.user
    token, expires = tokens.issue(
        subject=str(user.id), kind="staff", now=now, role=user.role.value, unit_id=user.unit_id
    )
    return TokenResponse(access_token=token, expires_at=expires.isoformat())


@router.get("/me", response_model=StaffMe)
async def me(user: CurrentStaff, session: SessionDep) -> StaffMe:
    out = StaffMe.model_validate(user)
    if user.unit_id is not None:
        unit = await session.get(SupervisionUnit, user.unit_id)
        if unit is not None:
            out.unit_code, out.unit_name = unit.code, unit.name
    return out


@router.post("/users", response_model=StaffRead, status_code=201)
async def create_user(
    body: StaffCreate, _: AdminStaff, session: SessionDep, clock: ClockDep
) -> StaffRead:
    return StaffRead.model_validate(await service.create_staff(session, body, now=clock.now()))


@router.get("/users", response_model=list[StaffRead])
async def list_users(
    _: AdminStaff,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    unit_id: int | None = None,
) -> list[StaffRead]:
    rows = await service.list_staff(session, unit_id=unit_id, limit=page.limit, offset=page.offset)
    return [StaffRead.model_validate(u) for u in rows]
