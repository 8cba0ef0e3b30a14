""" "New" and "changed" marks in the queue, without a table of their own.

The rule: a case is *new* when it was registered after the user last saw the
queue, *changed* when someone else wrote to its file since then (an action,
a rating, a supplement; a read of the filer's identity is not a change).

"Last saw" is the later of two moments, both kept without a migration:

* the last activity of the user's previous console session (a row of
  ``auth_sessions``, kept 30 days after it ends), so signing in in the
  morning marks what happened since yesterday's work;
* "全部标为已看" on the queue, a timestamp in a cookie bound by HMAC to the
  current session (a forged or copied value is ignored).

Within one session the baseline stays put until the user clears it, so marks
survive opening a case and coming back. A first ever session has no baseline
and marks nothing (everything would be "new").
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.complaints import identity
from app.console.dependencies import ConsoleContext
from app.console.security import console_key
from app.models import AuthSession, Complaint, ComplaintEvent, SessionKind, SessionSubject

SEEN_COOKIE = "ydt_seen"


def _mac(ctx: ConsoleContext, stamp: str) -> str:
    return hmac.new(
        console_key(ctx.settings), f"seen:{ctx.row.id}:{stamp}".encode(), "sha256"
    ).hexdigest()


def seen_value(ctx: ConsoleContext) -> str:
    stamp = str(int(ctx.now.timestamp()))
    return f"{stamp}.{_mac(ctx, stamp)}"


def _cookie_moment(request: Request, ctx: ConsoleContext) -> datetime | None:
    raw = request.cookies.get(SEEN_COOKIE, "")
    stamp, _, mac = raw.partition(".")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return None
    if not hmac.compare_digest(mac.encode(), _mac(ctx, stamp).encode()):
        return None
    return datetime.fromtimestamp(int(stamp), tz=UTC)


async def baseline(session: AsyncSession, request: Request, ctx: ConsoleContext) -> datetime | None:
    previous = (
        await session.execute(
            select(func.max(AuthSession.last_used_at)).where(
                AuthSession.subject_kind == SessionSubject.staff,
                AuthSession.subject_id == ctx.user.id,
                AuthSession.kind == SessionKind.console,
                AuthSession.id != ctx.row.id,
                AuthSession.created_at <= ctx.row.created_at,
            )
        )
    ).scalar_one_or_none()
    if previous is not None and previous.tzinfo is None:  # SQLite hands back naive UTC
        previous = previous.replace(tzinfo=UTC)
    moments = [m for m in (previous, _cookie_moment(request, ctx)) if m is not None]
    return max(moments) if moments else None


@dataclass(frozen=True, slots=True)
class Marks:
    since: datetime | None
    new: frozenset[str]
    changed: frozenset[str]


async def marks(
    session: AsyncSession, request: Request, ctx: ConsoleContext, ids: Sequence[str]
) -> Marks:
    since = await baseline(session, request, ctx)
    if since is None or not ids:
        return Marks(since, frozenset(), frozenset())
    new = {
        str(i)
        for (i,) in await session.execute(
            select(Complaint.id).where(Complaint.id.in_(ids), Complaint.created_at > since)
        )
    }
    by_me = and_(ComplaintEvent.actor_kind == "staff", ComplaintEvent.actor_id == ctx.user.id)
    changed = {
        str(i)
        for (i,) in await session.execute(
            select(ComplaintEvent.complaint_id)
            .where(
                ComplaintEvent.complaint_id.in_(ids),
                ComplaintEvent.created_at > since,
                ComplaintEvent.kind != identity.VIEWED,
                not_(by_me),
            )
            .distinct()
        )
    }
    return Marks(since, frozenset(new), frozenset(changed - new))
