"""The staff queue and the full case file, scoped in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query
from sqlalchemy import ColumnElement, Select, and_, case, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints.schemas import ItemBrief, UnitBrief
from app.complaints.service import EVENT_LABELS, ComplaintNotFound, mask_phone, thresholds
from app.core.config import Settings
from app.models import Complaint, ComplaintEvent, Item, Media, Region, StaffUser, SupervisionUnit
from app.models.enums import ComplaintStatus, StaffRole
from app.regions.repository import prefix_of
from app.workflow import scope
from app.workflow.machine import Card, card_at
from app.workflow.schemas import CaseFile, EventRead, QueueItem, Reporter

OPEN = [s for s in ComplaintStatus if s.is_open]


def card_condition(card: Card, now: datetime) -> ColumnElement[bool]:
    is_open = Complaint.status.in_(OPEN)
    if card is Card.red:
        return and_(is_open, Complaint.due_at < now)
    if card is Card.orange:
        return and_(is_open, Complaint.orange_at <= now, Complaint.due_at >= now)
    if card is Card.yellow:
        return and_(is_open, Complaint.yellow_at <= now, Complaint.orange_at > now)
    return or_(Complaint.status.not_in(OPEN), Complaint.yellow_at > now)


def card_rank(now: datetime) -> ColumnElement[int]:
    """3 red, 2 orange, 1 yellow, 0 none, for ordering in SQL."""
    return case(
        (Complaint.status.not_in(OPEN), literal(0)),
        (Complaint.due_at < now, literal(3)),
        (Complaint.orange_at <= now, literal(2)),
        (Complaint.yellow_at <= now, literal(1)),
        else_=literal(0),
    )


@dataclass(frozen=True, slots=True)
class QueueFilter:
    status: ComplaintStatus | None = None
    card: Card | None = None
    unit_id: int | None = None
    item_code: str | None = None
    region_code: str | None = None
    q: str | None = None


def queue_filter(
    status: ComplaintStatus | None = None,
    card: Card | None = None,
    unit_id: int | None = None,
    item_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    region_code: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
) -> QueueFilter:
    """The queue's filters as one dependency: the queue and the ledger share it."""
    return QueueFilter(
        status=status, card=card, unit_id=unit_id, item_code=item_code, region_code=region_code, q=q
    )


Row = tuple[Complaint, str, str, SupervisionUnit]


def _base() -> Select[Complaint, str, str, SupervisionUnit]:
    return (
        select(Complaint, Item.name, Region.full_name, SupervisionUnit)
        .join(Item, Item.id == Complaint.item_id)
        .join(Region, Region.code == Complaint.region_code)
        .join(SupervisionUnit, SupervisionUnit.id == Complaint.unit_id)
    )


def _filtered(
    stmt: Select[Complaint, str, str, SupervisionUnit], f: QueueFilter, now: datetime
) -> Select[Complaint, str, str, SupervisionUnit]:
    if f.status is not None:
        stmt = stmt.where(Complaint.status == f.status)
    if f.card is not None:
        stmt = stmt.where(card_condition(f.card, now))
    if f.unit_id is not None:
        stmt = stmt.where(Complaint.unit_id == f.unit_id)
    if f.item_code:
        stmt = stmt.where(Complaint.item_code == f.item_code)
    if f.region_code:
        stmt = stmt.where(Complaint.region_code.startswith(prefix_of(f.region_code)))
    if f.q:
        needle = f.q.strip()
        stmt = stmt.where(
            or_(
                Complaint.tracking_no == needle.upper(),
                Complaint.content.contains(needle, autoescape=True),
            )
        )
    return stmt


def reporter_for(user: StaffUser, c: Complaint, *, full: bool) -> Reporter:
    if not scope.sees_identity(user, c):
        return Reporter(anonymous=c.anonymous, visible=False)
    # Lists show a masked phone; the supervision side sees it whole in the case file.
    phone = (
        c.contact_phone
        if full and user.role is not StaffRole.handler
        else mask_phone(c.contact_phone)
    )
    return Reporter(
        anonymous=False, name=c.contact_name or c.reporter_name, phone=phone, visible=True
    )


def to_item(
    user: StaffUser, row: Row, *, now: datetime, settings: Settings, full: bool = False
) -> QueueItem:
    c, item_name, region_name, unit = row
    return QueueItem(
        id=c.id,
        tracking_no=c.tracking_no,
        status=c.status,
        status_label=c.status.label,
        card=card_at(
            now,
            received_at=c.received_at,
            due_at=c.due_at,
            thresholds=thresholds(settings),
            open_=c.status.is_open,
        ),
        priority=c.priority,
        priority_flags=list(c.priority_flags),
        channel=c.channel,
        item=ItemBrief(code=c.item_code, name=item_name),
        region_name=region_name,
        unit=UnitBrief(id=unit.id, code=unit.code, name=unit.name),
        cadre_id=c.cadre_id,
        accusation=c.accusation,
        received_at=c.received_at,
        accept_due_at=c.accept_due_at,
        due_at=c.due_at,
        version=c.version,
        reporter=reporter_for(user, c, full=full),
    )


async def queue(
    session: AsyncSession,
    user: StaffUser,
    f: QueueFilter,
    *,
    now: datetime,
    settings: Settings,
    limit: int,
    offset: int,
) -> list[QueueItem]:
    stmt = _filtered(_base().where(await scope.visible(session, user)), f, now)
    stmt = stmt.order_by(
        card_rank(now).desc(), Complaint.priority.desc(), Complaint.due_at, Complaint.id
    )
    rows = (await session.execute(stmt.limit(limit).offset(offset))).all()
    return [to_item(user, tuple(r), now=now, settings=settings) for r in rows]  # type: ignore[arg-type]


async def load_visible(session: AsyncSession, user: StaffUser, complaint_id: str) -> Row:
    if len(complaint_id) != 32:
        raise ComplaintNotFound("案件不存在")
    stmt = _base().where(Complaint.id == complaint_id, await scope.visible(session, user))
    row = (await session.execute(stmt)).one_or_none()
    if row is None:  # out of scope looks exactly like missing
        raise ComplaintNotFound("案件不存在")
    return tuple(row)  # type: ignore[return-value]


async def all_events(session: AsyncSession, complaint_id: str) -> Sequence[ComplaintEvent]:
    stmt = (
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == complaint_id)
        .order_by(ComplaintEvent.seq)
    )
    return (await session.execute(stmt)).scalars().all()


def signatures_since_resolution(events_: Sequence[ComplaintEvent]) -> list[str]:
    slots: list[str] = []
    for e in events_:
        if e.kind in ("resolved", "reopened"):
            slots = []
        elif e.kind == "signed":
            slots.append(str(e.data.get("slot")))
    return slots


async def case_file(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str,
    *,
    now: datetime,
    settings: Settings,
    scoped: bool = True,
) -> CaseFile:
    """``scoped=False`` only right after an authorised action (an escalation
    moves the case out of the actor's scope, yet they should see the result)."""
    if scoped:
        row = await load_visible(session, user, complaint_id)
    else:
        found = (await session.execute(_base().where(Complaint.id == complaint_id))).one()
        row = tuple(found)  # type: ignore[assignment]
    c = row[0]
    evs = await all_events(session, c.id)
    media = (
        (
            await session.execute(
                select(Media)
                .where(Media.attached_to == f"complaint:{c.id}")
                .order_by(Media.attached_at)
            )
        )
        .scalars()
        .all()
    )
    base = to_item(user, row, now=now, settings=settings, full=True)
    signed = signatures_since_resolution(evs)
    hide_identity = not scope.sees_identity(user, c)
    return CaseFile(
        **base.model_dump(),
        content=c.content,
        department_code=c.department_code,
        department_region_code=c.department_region_code,
        handler_department_code=c.handler_department_code,
        handler_region_code=c.handler_region_code,
        routing_trace=list(c.routing_trace),
        result=c.result,
        signatures=signed,
        signatures_needed=[s for s in settings.signoff_slots if s not in signed],
        events=[
            EventRead(
                seq=e.seq,
                kind=e.kind,
                label=EVENT_LABELS.get(e.kind, e.kind),
                public=e.public,
                actor_kind=e.actor_kind,
                # the department never learns which resident acted
                actor_id=None if (hide_identity and e.actor_kind == "citizen") else e.actor_id,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                data=e.data,
                at=e.created_at,
                hash=e.hash,
            )
            for e in evs
        ],
        media=[
            {"id": m.id, "kind": m.kind.value, "content_type": m.content_type, "size": m.size}
            for m in media
        ],
    )
