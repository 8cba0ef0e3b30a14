"""Writing notices into the outbox, in the transaction of the change itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import identity
from app.core.config import Settings
from app.models import Complaint, ComplaintFollow, ComplaintMerge, Notification, StaffUser
from app.models.enums import StaffRole
from app.notifications import templates
from app.workflow import scope


def to_citizen(
    session: AsyncSession,
    complaint: Complaint,
    *,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    slots: Mapping[str, str] | None = None,
) -> None:
    """A WeChat subscribe message to the resident (anonymous residents too: it goes
    to their own WeChat, not to staff).

    On a protected case the row names no recipient: delivery finds the openid
    in the case's sealed identity, so the outbox does not tie case to citizen.
    """
    notice = citizen_notice(complaint, kind=kind, title=title, body=body, now=now, slots=slots)
    if notice is not None:
        session.add(notice)


def citizen_notice(
    complaint: Complaint,
    *,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    slots: Mapping[str, str] | None = None,
) -> Notification | None:
    """The row ``to_citizen`` adds, for a writer that inserts it itself
    (app/complaints/filing_sql.py); None when no resident filed the case."""
    if not identity.has_citizen(complaint):
        return None
    # recipient NULL on a protected case
    return _citizen_row(complaint, complaint.citizen_id, kind, title, body, now, slots)


def _citizen_row(
    complaint: Complaint,
    recipient_id: int | None,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    slots: Mapping[str, str] | None,
) -> Notification:
    return Notification.built(
        recipient_kind="citizen",
        recipient_id=recipient_id,
        complaint_id=complaint.id,
        kind=kind,
        title=title[:64],
        body=body,
        data={
            "tracking_no": complaint.tracking_no,
            "status": templates.STATUS_WORDS.get(kind, ""),
            "at": now.isoformat(),
            "due": complaint.due_at.isoformat(),
            **(slots or {}),
        },
        channel="wechat_subscribe",
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


async def to_followers(
    session: AsyncSession,
    complaint: Complaint,
    *,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    slots: Mapping[str, str] | None = None,
) -> None:
    """The same notice to everyone who follows this case: residents who chose
    关注 instead of filing, and the complainants of cases merged into it.

    A merged child's complainant is reached through the child (a notice row
    on the child, delivered like the child's own), so an anonymous or accusing
    child's filer stays sealed and no row ties them to this case.
    """
    followers = (
        await session.execute(
            select(ComplaintFollow.citizen_id).where(ComplaintFollow.complaint_id == complaint.id)
        )
    ).scalars()
    for citizen_id in followers:
        session.add(_citizen_row(complaint, int(citizen_id), kind, title, body, now, slots))
    children = (
        await session.execute(
            select(Complaint)
            .join(ComplaintMerge, ComplaintMerge.child_id == Complaint.id)
            .where(ComplaintMerge.parent_id == complaint.id)
        )
    ).scalars()
    for child in children:
        to_citizen(session, child, kind=kind, title=title, body=body, now=now, slots=slots)


def to_staff(
    session: AsyncSession,
    staff_ids: Iterable[int],
    *,
    complaint_id: str | None,
    kind: str,
    title: str,
    body: str,
    now: datetime,
) -> None:
    """In-app notices: visible at once in the staff member's notice list."""
    for sid in set(staff_ids):
        session.add(
            Notification(
                recipient_kind="staff",
                recipient_id=sid,
                complaint_id=complaint_id,
                kind=kind,
                title=title[:64],
                body=body,
                channel="in_app",
                status="sent",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                sent_at=now,
            )
        )


async def staff_of_unit(
    session: AsyncSession, unit_id: int, roles: Iterable[StaffRole]
) -> list[int]:
    stmt = select(StaffUser.id).where(
        StaffUser.unit_id == unit_id, StaffUser.role.in_(list(roles)), StaffUser.active.is_(True)
    )
    return [int(i) for i in (await session.execute(stmt)).scalars()]


async def handlers_of(session: AsyncSession, department_code: str, region_code: str) -> list[int]:
    stmt = select(StaffUser.id).where(
        StaffUser.role == StaffRole.handler,
        StaffUser.department_code == department_code,
        StaffUser.region_code == region_code,
        StaffUser.active.is_(True),
    )
    return [int(i) for i in (await session.execute(stmt)).scalars()]


FAILED = ("dead", "retry", "skipped")
WAITING_REASON = "等待配置：未配置微信订阅消息（YDT_WECHAT_APPID/SECRET 或 YDT_WECHAT_TEMPLATES）"


def wechat_ready(settings: Settings) -> bool:
    return bool(settings.wechat_appid and settings.wechat_secret)


def template_kinds(settings: Settings) -> list[str]:
    """The notice kinds that have a template id."""
    return sorted(k for k, v in settings.wechat_templates.items() if v)


def sendable_kinds(settings: Settings) -> list[str]:
    """The resident notice kinds this configuration can send (none without WeChat)."""
    return template_kinds(settings) if wechat_ready(settings) else []


def waiting(settings: Settings) -> ColumnElement[bool]:
    """Resident notices held back because something is not configured: they
    stay pending (not a final state) and go out once it is."""
    return and_(
        Notification.channel == "wechat_subscribe",
        Notification.status.in_(["pending", "retry"]),
        Notification.kind.not_in(sendable_kinds(settings)),
    )


async def waiting_count(
    session: AsyncSession, settings: Settings, user: StaffUser | None = None
) -> int:
    """All waiting notices (for /readyz), or those on the cases ``user`` may see."""
    stmt = select(func.count()).select_from(Notification).where(waiting(settings))
    if user is not None:
        stmt = stmt.join(Complaint, Complaint.id == Notification.complaint_id).where(
            await scope.visible(session, user)
        )
    return int((await session.execute(stmt)).scalar_one())


async def failures(
    session: AsyncSession,
    user: StaffUser,
    *,
    limit: int,
    offset: int,
    settings: Settings | None = None,
) -> list[Notification]:
    """Residents' messages that failed or are being retried, for the cases the
    caller may see (notices carry tracking numbers and reasons); given the
    settings, also those waiting for WeChat to be configured."""
    failed = Notification.status.in_(FAILED)
    stmt = (
        select(Notification)
        .join(Complaint, Complaint.id == Notification.complaint_id)
        .where(
            Notification.recipient_kind == "citizen",
            or_(failed, waiting(settings)) if settings is not None else failed,
            await scope.visible(session, user),
        )
        .order_by(Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(stmt)).scalars())
