"""Who is looking, and whether a form may change anything.

``Ctx`` resolves the browser session (or sends the browser to the sign-in
page); ``CsrfForm`` parses a state-changing request's form and refuses it
with 403 unless it carries this session's CSRF token and, when the browser
says where it came from, comes from this site.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from app.console import sessions
from app.console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    csrf_for_session,
    same_origin,
    session_cookie_name,
    tokens_equal,
)
from app.core import db, forms
from app.core.config import Settings
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep
from app.core.errors import Forbidden
from app.models import AuthSession, StaffUser, SupervisionUnit

# Evidence: the API takes at most 13 media ids per action or filing (app/core/forms.py).
MAX_FILES = forms.MAX_FILES


class LoginRequired(Exception):
    """No live session: ``ConsoleRoute`` answers with the sign-in page."""


class CsrfRejected(Forbidden):
    code = "csrf_failed"


CSRF_MESSAGE = "页面已过期或请求来源不明（缺少安全校验码），请返回刷新页面后重试"


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    user: StaffUser
    row: AuthSession
    unit: SupervisionUnit | None
    csrf: str
    now: datetime
    settings: Settings


def _context(
    user: StaffUser,
    row: AuthSession,
    unit: SupervisionUnit | None,
    now: datetime,
    settings: Settings,
) -> ConsoleContext:
    return ConsoleContext(
        user=user,
        row=row,
        unit=unit,
        csrf=csrf_for_session(settings, row.id),
        now=now,
        settings=settings,
    )


async def console_context(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> ConsoleContext:
    now = clock.now()
    token = request.cookies.get(session_cookie_name(request, settings))
    found = await sessions.resolve(session, token, now=now, settings=settings) if token else None
    if found is None:
        raise LoginRequired
    row, user = found
    unit = await session.get(SupervisionUnit, user.unit_id) if user.unit_id else None
    return _context(user, row, unit, now, settings)


async def reading_console_context(
    request: Request, session: ReadSessionDep, settings: SettingsDep, clock: ClockDep
) -> ConsoleContext:
    """``console_context`` for a page that only reads: the browser session is
    looked up in a read session, and what is due about it (its end, or its
    mark of use once a minute) is written in a short writer session of its
    own. On SQLite the page then holds no write lock while it reads and
    renders, so a cadre's forty-case queue holds up no resident's filing."""
    now = clock.now()
    token = request.cookies.get(session_cookie_name(request, settings))
    found = await sessions.look_up(session, token, now=now, settings=settings) if token else None
    if found is None:
        raise LoginRequired
    if sessions.needs_write(found):
        async with db.write_session(request) as writer:
            await sessions.settle(writer, found, now=now)
    if not found.live or found.user is None:
        raise LoginRequired
    user = found.user
    unit = await session.get(SupervisionUnit, user.unit_id) if user.unit_id else None
    return _context(user, found.row, unit, now, settings)


Ctx = Annotated[ConsoleContext, Depends(console_context)]
# For a page that only reads, with ``ReadSessionDep`` (one session each).
ReadingCtx = Annotated[ConsoleContext, Depends(reading_console_context)]


async def read_form(request: Request) -> FormData:
    # Already read by the writer session's dependency, if the route has one.
    return await forms.read_form(request)


def check_csrf(request: Request, form: FormData, expected: str) -> None:
    token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not same_origin(request) or not isinstance(token, str) or not tokens_equal(token, expected):
        raise CsrfRejected(CSRF_MESSAGE)


async def _checked_form(request: Request, ctx: ConsoleContext) -> FormData:
    form = await read_form(request)
    check_csrf(request, form, ctx.csrf)
    return form


async def csrf_form(request: Request, ctx: Ctx) -> FormData:
    return await _checked_form(request, ctx)


async def reading_csrf_form(request: Request, ctx: ReadingCtx) -> FormData:
    """``csrf_form`` for a page that writes in a session of its own
    (``db.write_session``) after work that must hold no lock (evidence files)."""
    return await _checked_form(request, ctx)


CsrfForm = Annotated[FormData, Depends(csrf_form)]
ReadingCsrfForm = Annotated[FormData, Depends(reading_csrf_form)]


def field(form: FormData, name: str) -> str:
    """A text field, stripped; "" when absent or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
