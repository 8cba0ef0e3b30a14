from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from app.auth import sessions
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, SharedDep, TokensDep
from app.core.pagination import PageParams, page_params
from app.core.ratelimit import client_ip
from app.core.responses import error_response
from app.core.schemas import DB_INT_MAX
from app.models import SupervisionUnit
from app.staff import login as staff_login
from app.staff import service
from app.staff.dependencies import (
    AdminStaff,
    CurrentStaffAuth,
    ReadingAdmin,
    ReadingStaff,
)
from app.staff.schemas import (
    LoginAttemptRead,
    LoginRequest,
    RefreshRequest,
    RevokeResult,
    SessionRead,
    StaffCreate,
    StaffMe,
    StaffPage,
    StaffRead,
    StaffUpdate,
    TokenResponse,
)

router = APIRouter(prefix="/staff", tags=["staff"])

StaffId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="staff account id")]


def _tokens(pair: sessions.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_at=pair.access_expires_at.isoformat(),
        refresh_token=pair.refresh_token,
        refresh_expires_at=pair.refresh_expires_at.isoformat(),
    )


@router.post(
    "/auth/login",
    response_model=TokenResponse,
    responses={
        401: {
            "description": "the one answer to every failed login: unknown user, wrong "
            "password, disabled account or too many attempts"
        }
    },
)
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    tokens: TokensDep,
    clock: ClockDep,
    shared: SharedDep,
    settings: SettingsDep,
) -> TokenResponse | JSONResponse:
    now = clock.now()
    try:
        user = await staff_login.authenticate(
            session,
            shared,
            settings,
            username=body.username,
            password=body.password,
            ip=client_ip(request, settings),
            now=now,
        )
    except staff_login.LoginFailed as failed:
        # Returned, not raised: the audit row must be committed.
        return error_response(failed)
    return _tokens(await service.sign_in(session, tokens, user, now=now))


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    responses={401: {"description": "refresh token invalid, expired, revoked or already used"}},
)
async def refresh(
    body: RefreshRequest, session: SessionDep, tokens: TokensDep, clock: ClockDep
) -> TokenResponse | JSONResponse:
    """A new token pair; the refresh token presented stops working. Presenting
    one that was already used revokes the whole session (reuse detection)."""
    result = await service.refresh(session, tokens, body.refresh_token, now=clock.now())
    if isinstance(result, sessions.TokenPair):
        return _tokens(result)
    return error_response(result)  # returned, not raised: a revocation must commit


@router.post("/auth/logout", status_code=204, response_class=Response)
async def logout(auth: CurrentStaffAuth, session: SessionDep, clock: ClockDep) -> Response:
    """Ends this login's session: its access and refresh tokens stop working."""
    await sessions.revoke(session, auth.session_id, reason="logout", now=clock.now())
    return Response(status_code=204)


@router.get("/me", response_model=StaffMe)
async def me(user: ReadingStaff, session: ReadSessionDep) -> StaffMe:
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


@router.get("/users", response_model=StaffPage)
async def list_users(
    _: ReadingAdmin,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    unit_id: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> StaffPage:
    rows = await service.list_staff(session, unit_id=unit_id, limit=page.limit, offset=page.offset)
    return StaffPage(
        items=[StaffRead.model_validate(u) for u in rows],
        next_cursor=page.next_cursor(len(rows)),
    )


@router.get("/users/{staff_id}", response_model=StaffRead)
async def get_user(staff_id: StaffId, _: ReadingAdmin, session: ReadSessionDep) -> StaffRead:
    return StaffRead.model_validate(await service.get_staff(session, staff_id))


@router.patch("/users/{staff_id}", response_model=StaffRead)
async def update_user(
    staff_id: StaffId, body: StaffUpdate, admin: AdminStaff, session: SessionDep, clock: ClockDep
) -> StaffRead:
    """Disable or enable an account, reset its password, correct name or phone.

    Disabling and a password reset end all the account's sessions (its tokens
    and console sessions stop at their next request). Admins cannot disable
    themselves.
    """
    user = await service.update_staff(session, admin, staff_id, body, now=clock.now())
    return StaffRead.model_validate(user)


@router.post("/users/{staff_id}/revoke-sessions", response_model=RevokeResult)
async def revoke_sessions(
    staff_id: StaffId, _: AdminStaff, session: SessionDep, clock: ClockDep
) -> RevokeResult:
    """Ends every session of the account (API tokens and console), e.g. after a
    lost phone; the account stays active and can sign in again."""
    await service.get_staff(session, staff_id)
    count = await service.revoke_sessions(session, staff_id, reason="admin", now=clock.now())
    return RevokeResult(revoked=count)


@router.get("/users/{staff_id}/sessions", response_model=list[SessionRead])
async def list_sessions(
    staff_id: StaffId, _: ReadingAdmin, session: ReadSessionDep, clock: ClockDep
) -> list[SessionRead]:
    rows = await service.live_sessions(session, staff_id, now=clock.now())
    return [SessionRead.model_validate(r) for r in rows]


@router.get("/users/{staff_id}/login-attempts", response_model=list[LoginAttemptRead])
async def login_attempts(
    staff_id: StaffId,
    _: ReadingAdmin,
    session: ReadSessionDep,
    failed_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[LoginAttemptRead]:
    """The account's recent sign-in attempts, newest first (attempts at unknown
    usernames belong to no account and are in the log only)."""
    rows = await service.login_attempts(session, staff_id, failed_only=failed_only, limit=limit)
    return [LoginAttemptRead.model_validate(r) for r in rows]
