"""Sign-in, sign-out and the larger-text switch.

Sign-in calls the same staff login service as ``POST /api/v1/staff/auth/login``
(``app/staff/login.py``: throttling, auditing and the uniform failure live
there, once). Every failure gets the same page, status and message, so the
form does not tell an unknown user from a wrong password or a throttled or
disabled account.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from starlette.responses import Response

from app.console import navigation, sessions
from app.console.dependencies import (
    CSRF_MESSAGE,
    CsrfForm,
    CsrfRejected,
    Ctx,
    ReadingCtx,
    check_csrf,
    field,
    read_form,
)
from app.console.routing import console_router
from app.console.security import (
    TEXT_COOKIE,
    clear_cookie,
    csrf_for_login,
    csrf_for_session,
    pre_cookie_name,
    session_cookie_name,
    set_cookie,
)
from app.console.templating import redirect, render, safe_next
from app.core.deps import ClockDep, SessionDep, SettingsDep, SharedDep
from app.core.ratelimit import client_ip
from app.models import AuthSession
from app.staff import login as staff_login

router = console_router(prefix="/console")

# The API's one answer to every failure, word for word.
LOGIN_FAILED = staff_login.FAILED_DETAIL
MAX_USERNAME = 64
MAX_PASSWORD = 128


async def _live_session(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> AuthSession | None:
    token = request.cookies.get(session_cookie_name(request, settings))
    if not token:
        return None
    found = await sessions.resolve(session, token, now=clock.now(), settings=settings)
    return found[0] if found else None


def _login_page(
    request: Request,
    settings: SettingsDep,
    *,
    pre: str,
    next_path: str,
    error: str | None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    response = render(
        request,
        "login.html",
        ctx=None,
        status_code=status_code,
        csrf=csrf_for_login(settings, pre),
        next_path=next_path,
        error=error,
        username=username,
    )
    set_cookie(response, request, settings, pre_cookie_name(request, settings), pre)
    return response


@router.get("/login")
async def login_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    next: str | None = None,
) -> Response:
    target = safe_next(next, "")
    if await _live_session(request, session, settings, clock) is not None:
        return redirect(request, target or "/console/")
    pre = request.cookies.get(pre_cookie_name(request, settings)) or secrets.token_urlsafe(24)
    return _login_page(request, settings, pre=pre[:64], next_path=target, error=None)


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
) -> Response:
    form = await read_form(request)
    pre = request.cookies.get(pre_cookie_name(request, settings))
    if not pre:
        raise CsrfRejected(CSRF_MESSAGE)
    check_csrf(request, form, csrf_for_login(settings, pre))
    username = field(form, "username")
    raw_password = form.get("password")
    password = raw_password if isinstance(raw_password, str) else ""
    target = safe_next(field(form, "next"), "")
    now = clock.now()
    user = None
    if 0 < len(username) <= MAX_USERNAME and 0 < len(password) <= MAX_PASSWORD:
        try:
            user = await staff_login.authenticate(
                session,
                shared,
                settings,
                username=username,
                password=password,
                ip=client_ip(request, settings),
                now=now,
            )
        except staff_login.LoginFailed:
            user = None
    if user is None:
        # Rendered, not raised: the attempt's audit row must be committed.
        return _login_page(
            request,
            settings,
            pre=pre,
            next_path=target,
            error=LOGIN_FAILED,
            username=username[:MAX_USERNAME],
            status_code=401,
        )
    old = await _live_session(request, session, settings, clock)
    if old is not None:  # a fresh session on every sign-in (no fixation)
        await sessions.close(session, old, now=now)
    opened = await sessions.open_session(session, user, now=now, settings=settings)
    response = redirect(request, target or navigation.home_for(user))
    set_cookie(response, request, settings, session_cookie_name(request, settings), opened.token)
    clear_cookie(response, request, settings, pre_cookie_name(request, settings))
    return response


@router.post("/logout")
async def logout(
    request: Request, ctx: Ctx, form: CsrfForm, session: SessionDep, settings: SettingsDep
) -> Response:
    await sessions.close(session, ctx.row, now=ctx.now)
    response = redirect(request, "/console/login", flash=("ok", "已安全退出登录"))
    clear_cookie(response, request, settings, session_cookie_name(request, settings))
    return response


@router.post("/prefs/text-size")
async def text_size(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> Response:
    """The larger-text switch; works on the sign-in page too, so it takes the
    session's token or, before sign-in, the login form's."""
    form = await read_form(request)
    live = await _live_session(request, session, settings, clock)
    if live is not None:
        expected = csrf_for_session(settings, live.id)
    else:
        pre = request.cookies.get(pre_cookie_name(request, settings))
        if not pre:
            raise CsrfRejected(CSRF_MESSAGE)
        expected = csrf_for_login(settings, pre)
    check_csrf(request, form, expected)
    size = "large" if field(form, "size") == "large" else "normal"
    response = redirect(request, safe_next(field(form, "next"), "/console/"))
    set_cookie(response, request, settings, TEXT_COOKIE, size, max_age=365 * 24 * 3600)
    return response


@router.get("")
@router.get("/")
async def home(ctx: ReadingCtx, request: Request) -> Response:
    return redirect(request, navigation.home_for(ctx.user))
