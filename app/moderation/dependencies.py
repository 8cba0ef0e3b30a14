from __future__ import annotations

from fastapi import Request

from app.auth.dependencies import CitizenToken
from app.core.db import read_session
from app.core.deps import Services
from app.models import Citizen
from app.moderation.service import ContentGate, TextCheck, check_text


def content_gate(services: Services) -> ContentGate:
    """Built per request from app.state, so a replaced WeChat client is used."""
    return ContentGate(services.settings, services.wechat)


async def judged_first(
    request: Request, token: CitizenToken, text: str | None, *, scene: int, what: str
) -> tuple[Citizen, TextCheck | None]:
    """The resident and WeChat's verdict on what they wrote, for a route that
    writes a resident's text, before its writer session begins
    (``db.write_session``): WeChat answers in up to
    ``YDT_CONTENT_CHECK_TIMEOUT_SECONDS`` and no transaction may wait on it
    (on SQLite it held the database's write lock for every process).

    The resident is read as reads are (no write lock), only while the
    token's session works (401 otherwise). A risky text is the 422 here, so
    it comes before the route's own refusals (a closed case, another's case),
    which it did not before; it tells nothing of the case either way."""
    services = Services(request)
    now = services.clock.now()
    async with read_session(request) as session:
        citizen = await token.citizen(session, now)
    verdict = await check_text(
        content_gate(services), text, citizen=citizen, scene=scene, what=what, now=now
    )
    return citizen, verdict
