"""The staff queue and the full case file, scoped in SQL."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.complaints import identity
from app.complaints.schemas import ItemBrief, UnitBrief
from app.complaints.service import EVENT_LABELS, ComplaintNotFound, mask_phone, public_text
from app.core.config import Settings
from app.core.errors import BadRequest
from app.core.schemas import DB_INT_MAX, DbId
from app.disclosures import views as disclosure_views
from app.duplicates import search as meaning_search
from app.models import Complaint, ComplaintEvent, Item, Media, Region, StaffUser, SupervisionUnit
from app.models.enums import Channel, ComplaintStatus, StaffRole
from app.moderation import checks as moderation_checks
from app.regions.repository import prefix_of
from app.workflow import cohort as cohort_filter
from app.workflow import scope
from app.workflow.machine import Card, card_at
from app.workflow.schemas import CaseFile, EventRead, QueueItem, Reporter

# Literal SQL, so PostgreSQL and SQLite match it to the partial indexes
# ix_complaints_queue_open / _done (a bound parameter could not be matched).
_DONE: list[ColumnElement[str]] = [literal_column("'closed'"), literal_column("'rejected'")]
IS_OPEN = Complaint.status.not_in(_DONE)
IS_DONE = Complaint.status.in_(_DONE)
_HEX32 = re.compile(r"[0-9a-f]{32}")
CARD_RANK = {Card.red: 3, Card.orange: 2, Card.yellow: 1, Card.none: 0}


def card_branches(now: datetime) -> list[tuple[Card, bool, ColumnElement[bool]]]:
    """The queue as disjoint ranges, in display order: each card is a range of
    open cases by due time (the stored yellow and orange moments precede the
    deadline), and "no card" is the not-yet-yellow open cases plus the closed."""
    return [
        (Card.red, True, and_(IS_OPEN, Complaint.due_at < now)),
        (Card.orange, True, and_(IS_OPEN, Complaint.due_at >= now, Complaint.orange_at <= now)),
        (
            Card.yellow,
            True,
            and_(
                IS_OPEN,
                Complaint.due_at >= now,
                Complaint.orange_at > now,
                Complaint.yellow_at <= now,
            ),
        ),
        (Card.none, True, and_(IS_OPEN, Complaint.due_at >= now, Complaint.yellow_at > now)),
        (Card.none, False, IS_DONE),
    ]


@dataclass(frozen=True, slots=True)
class QueueCursor:
    """Where a page ended: card rank, negated priority, deadline and id, the
    queue's sort key, so the next page starts there instead of counting rows."""

    rank: int
    neg_priority: int
    due_at: datetime
    id: str

    def encode(self) -> str:
        micros = int(self.due_at.timestamp() * 1_000_000)
        return f"{self.rank}.{self.neg_priority}.{micros}.{self.id}"

    @classmethod
    def decode(cls, raw: str) -> QueueCursor:
        try:
            rank, neg, micros, cid = raw.split(".")
            if not raw.isascii() or not _HEX32.fullmatch(cid) or abs(int(neg)) > DB_INT_MAX:
                raise ValueError(raw)  # the priority is compared with an INTEGER column
            due = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
            if int(rank) not in CARD_RANK.values():
                raise ValueError(raw)
            return cls(int(rank), int(neg), due, cid)
        except (ValueError, OverflowError, OSError) as exc:
            raise BadRequest("翻页游标无效，请从第一页重新加载") from exc


@dataclass(frozen=True, slots=True)
class QueuePageParams:
    limit: int
    offset: int
    after: QueueCursor | None


def queue_page(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=80)] = None,
    offset: Annotated[int | None, Query(ge=0, le=100_000)] = None,
) -> QueuePageParams:
    """``cursor`` is the ``next_cursor`` of the previous page; a bare number is
    still read as an offset, as the first clients sent."""
    if cursor and cursor.isascii() and cursor.isdigit():  # not "²³": isdigit() takes it
        return QueuePageParams(limit=limit, offset=min(int(cursor), 100_000), after=None)
    after = QueueCursor.decode(cursor) if cursor else None
    return QueuePageParams(limit=limit, offset=offset or 0, after=after)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    status: ComplaintStatus | None = None
    card: Card | None = None
    unit_id: int | None = None
    item_code: str | None = None
    region_code: str | None = None
    q: str | None = None
    phone: str | None = None  # the filer's phone (audited on protected cases)
    channel: Channel | None = None
    cadre_id: int | None = None  # "assigned to me" (the console)
    signer: StaffUser | None = None  # "waiting for my signature" (the console)
    category_code: str | None = None  # two digits: the items of one category
    name: str | None = None  # the filer's name: ordinary cases only (protected ones are sealed)
    cohort: cohort_filter.Cohort | None = None  # the cases behind a statistics figure


def queue_filter(
    status: ComplaintStatus | None = None,
    card: Card | None = None,
    unit_id: DbId | None = None,
    item_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    region_code: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    phone: Annotated[
        str | None,
        Query(
            pattern=r"^\+?[0-9][0-9 -]{4,18}$",
            description="the filer's phone; finds only cases whose filer your role may see, "
            "and each accusation found this way is recorded as a read of its filer's identity",
        ),
    ] = None,
) -> QueueFilter:
    """The queue's filters as one dependency: the queue and the ledger share it."""
    return QueueFilter(
        status=status,
        card=card,
        unit_id=unit_id,
        item_code=item_code,
        region_code=region_code,
        q=q,
        phone=phone,
    )


Row = tuple[Complaint, str, str, SupervisionUnit]
S = TypeVar("S", bound="Select[*tuple[Any, ...]]")


def _base() -> Select[Complaint, str, str, SupervisionUnit]:
    return (
        select(Complaint, Item.name, Region.full_name, SupervisionUnit)
        .join(Item, Item.id == Complaint.item_id)
        .join(Region, Region.code == Complaint.region_code)
        .join(SupervisionUnit, SupervisionUnit.id == Complaint.unit_id)
    )


def _filtered(stmt: S, f: QueueFilter) -> S:
    if f.status is not None:
        stmt = stmt.where(Complaint.status == f.status)
    if f.unit_id is not None:
        stmt = stmt.where(Complaint.unit_id == f.unit_id)
    if f.item_code:
        stmt = stmt.where(Complaint.item_code == f.item_code)
    if f.category_code:
        stmt = stmt.where(Complaint.item_code.startswith(f.category_code))
    if f.region_code:
        stmt = stmt.where(Complaint.region_code.startswith(prefix_of(f.region_code)))
    if f.channel is not None:
        stmt = stmt.where(Complaint.channel == f.channel)
    if f.cadre_id is not None:
        stmt = stmt.where(Complaint.cadre_id == f.cadre_id)
    if f.signer is not None:
        stmt = stmt.where(awaiting_signature(f.signer))
    return stmt


def awaiting_signature(user: StaffUser) -> ColumnElement[bool]:
    """Resolved cases the user has not signed in this round (the round starts
    at the latest resolution), of their own unit for the supervision side:
    those on which a sign-off slot may still wait for them."""
    if user.role not in (StaffRole.supervisor, StaffRole.leader, StaffRole.handler):
        return false()
    resolution = aliased(ComplaintEvent)
    resolved_at = (
        select(func.max(resolution.seq))
        .where(resolution.complaint_id == Complaint.id, resolution.kind == "resolved")
        .correlate(Complaint)
        .scalar_subquery()
    )
    signed = (
        select(ComplaintEvent.id)
        .where(
            ComplaintEvent.complaint_id == Complaint.id,
            ComplaintEvent.kind == "signed",
            ComplaintEvent.actor_kind == "staff",
            ComplaintEvent.actor_id == user.id,
            ComplaintEvent.seq > resolved_at,
        )
        .exists()
    )
    cond = and_(Complaint.status == ComplaintStatus.resolved, ~signed)
    if user.role is not StaffRole.handler:
        cond = and_(cond, Complaint.unit_id == user.unit_id)
    return cond


def reporter_for(user: StaffUser, c: Complaint, *, full: bool) -> Reporter:
    """An accuser is shown in the case file only (``full``), where every read
    is recorded in the case's chain; lists and exports never show one."""
    if not scope.sees_identity(user, c) or (c.identity_protected and not full):
        return Reporter(anonymous=c.anonymous, visible=False)
    filer = identity.of(c)
    # Lists show a masked phone; the supervision side sees it whole in the case file.
    phone = filer.phone if full and user.role is not StaffRole.handler else mask_phone(filer.phone)
    return Reporter(anonymous=False, name=filer.display_name, phone=phone, visible=True)


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
            due_at=c.due_at,
            yellow_at=c.yellow_at,
            orange_at=c.orange_at,
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
        moderation=c.moderation,
    )


async def open_priorities(session: AsyncSession) -> list[int]:
    """The distinct negated priorities among open cases, by a loose index scan
    (one probe of ix_complaints_queue_open per value, a handful in practice)."""
    neg = -Complaint.priority
    first = select(func.min(neg)).where(IS_OPEN).scalar_subquery()
    seen = select(first.label("v")).cte("prio", recursive=True)
    step = select(func.min(neg)).where(IS_OPEN, neg > seen.c.v).correlate(seen).scalar_subquery()
    seen = seen.union_all(select(step).where(seen.c.v.is_not(None)))
    rows = await session.execute(select(seen.c.v).where(seen.c.v.is_not(None)))
    return [int(v) for (v,) in rows]


@dataclass(frozen=True, slots=True)
class QueueResult:
    items: list[QueueItem]
    next_cursor: str | None
    # Protected cases a search by the filer's phone found: a read of their
    # filers' identity, which the caller records (``record_identity_reads``)
    # in a writer session before it answers; the search itself only reads,
    # from a read session or a replica.
    identity_reads: tuple[Complaint, ...] = ()


async def record_identity_reads(
    session: AsyncSession, user: StaffUser, found: Sequence[Complaint], *, now: datetime
) -> None:
    """Record the identity reads of a phone search (``QueueResult.identity_reads``)."""
    for c in found:
        await identity.record_read(session, user, c, via="phone_search", at=now)


async def _scoped(
    session: AsyncSession, user: StaffUser, f: QueueFilter, now: datetime
) -> ColumnElement[bool]:
    """The user's scope, narrowed to the filer's phone or name when searching
    by them: only among the cases whose filer this role may see."""
    visible = await scope.visible(session, user)
    if f.cohort is not None:
        visible = and_(visible, cohort_filter.condition(f.cohort, now))
    if f.name:
        visible = and_(
            visible, identity.visible_condition(user), Complaint.contact_name == f.name.strip()
        )
    if f.q:  # by meaning as well as exact words: one condition, read with the scope
        visible = and_(visible, await meaning_search.condition(session, f.q))
    if not f.phone:
        return visible
    return and_(visible, identity.visible_condition(user), identity.phone_condition(f.phone))


async def queue(
    session: AsyncSession,
    user: StaffUser,
    f: QueueFilter,
    *,
    now: datetime,
    settings: Settings,
    limit: int,
    offset: int = 0,
    after: QueueCursor | None = None,
) -> QueueResult:
    """Ordered by card, then priority, then deadline, then id.

    Each card bucket is read in index order (``ix_complaints_queue_*``) and
    cut at ``limit`` before the buckets are merged, so a page costs about the
    same at a thousand cases or a million; a cursor resumes each bucket by a
    range condition instead of skipping rows.
    """
    visible = await _scoped(session, user, f, now)
    take = limit + offset
    # Open buckets are read per priority value, so each is a true index range
    # ((-priority) = p AND due_at from now): a page then never walks past the
    # overdue backlog to reach the orange cases.
    priorities = await open_priorities(session)
    by_rank: dict[int, list[Select[*tuple[Any, ...]]]] = {}
    for card, open_, cond in card_branches(now):
        rank = CARD_RANK[card]
        if f.card is not None and card is not f.card:
            continue
        if f.status is not None and f.status.is_open is not open_:
            continue
        if after is not None and rank > after.rank:
            continue
        for neg in priorities if open_ else [None]:
            where = [visible, cond]
            if neg is not None:
                where.append(-Complaint.priority == neg)
            if after is not None and rank == after.rank:
                if neg is None:
                    where.append(
                        tuple_(-Complaint.priority, Complaint.due_at, Complaint.id)
                        > tuple_(
                            literal(after.neg_priority), literal(after.due_at), literal(after.id)
                        )
                    )
                elif neg < after.neg_priority:
                    continue
                elif neg == after.neg_priority:
                    where.append(
                        tuple_(Complaint.due_at, Complaint.id)
                        > tuple_(literal(after.due_at), literal(after.id))
                    )
            branch = _filtered(
                select(
                    Complaint.id.label("id"),
                    literal(rank).label("rank"),
                    (-Complaint.priority).label("neg_priority"),
                    Complaint.due_at.label("due_at"),
                ).where(*where),
                f,
            )
            order = (-Complaint.priority, Complaint.due_at, Complaint.id)
            by_rank.setdefault(rank, []).append(
                select(branch.order_by(*order).limit(take).subquery())
            )
    # Every row of a higher card comes before any row of a lower one, so the
    # buckets are read in order and reading stops once the page is full: the
    # first page of a busy unit never touches the cases that carry no card.
    keys: list[tuple[str, int]] = []
    for rank in sorted(by_rank, reverse=True):
        u = union_all(*by_rank[rank]).subquery()
        found = await session.execute(
            select(u.c.id, u.c.rank)
            .order_by(u.c.neg_priority, u.c.due_at, u.c.id)
            .limit(take - len(keys))
        )
        keys += [(str(i), int(r)) for i, r in found]
        if len(keys) >= take:
            break
    keys = keys[offset : offset + limit]
    if not keys:
        return QueueResult([], None)
    loaded = {
        row[0].id: row
        for row in await session.execute(_base().where(Complaint.id.in_([k[0] for k in keys])))
    }
    rows = [(loaded[cid], rank) for cid, rank in keys]
    # Finding a protected case by its filer's phone is a read of identity.
    reads = tuple(r[0] for r, _ in rows if f.phone and r[0].identity_protected)
    items = [to_item(user, (r[0], r[1], r[2], r[3]), now=now, settings=settings) for r, _ in rows]
    next_cursor = None
    if len(rows) == limit:
        last, rank = rows[-1][0][0], rows[-1][1]
        next_cursor = QueueCursor(rank, -last.priority, last.due_at, last.id).encode()
    return QueueResult(items, next_cursor, reads)


async def card_counts(
    session: AsyncSession, user: StaffUser, f: QueueFilter, *, now: datetime
) -> dict[Card, int]:
    """Open cases per card, under the queue's scope and filters (the card
    filter aside): the console's counters, in one pass over the open cases."""
    counts = dict.fromkeys(Card, 0)
    if f.status is not None and not f.status.is_open:
        return counts
    branches = [(card, cond) for card, open_, cond in card_branches(now) if open_]
    stmt = _filtered(
        select(*[func.count().filter(cond) for _, cond in branches]).where(
            await _scoped(session, user, f, now), IS_OPEN
        ),
        f,
    )
    row = (await session.execute(stmt)).one()
    for (card, _), n in zip(branches, row, strict=True):
        counts[card] += int(n or 0)
    return counts


async def total(session: AsyncSession, user: StaffUser, f: QueueFilter, *, now: datetime) -> int:
    """How many cases the queue holds under these filters, open and closed
    (the console shows it beside a statistics figure the list stands for)."""
    where = await _scoped(session, user, f, now)
    if f.card is not None:
        where = and_(where, or_(*[c for card, _, c in card_branches(now) if card is f.card]))
    stmt = _filtered(select(func.count()).select_from(Complaint).where(where), f)
    return int((await session.execute(stmt)).scalar_one())


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


def round_signatures(events_: Sequence[ComplaintEvent]) -> list[tuple[str, int | None]]:
    """(slot, signer) of this handling round: a resolution or reopening starts a new one."""
    signed: list[tuple[str, int | None]] = []
    for e in events_:
        if e.kind in ("resolved", "reopened"):
            signed = []
        elif e.kind == "signed":
            signed.append((str(e.data.get("slot")), e.actor_id))
    return signed


def signatures_since_resolution(events_: Sequence[ComplaintEvent]) -> list[str]:
    return [slot for slot, _ in round_signatures(events_)]


async def case_file(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str,
    *,
    now: datetime,
    settings: Settings,
    scoped: bool = True,
    read_via: str = "case_file",
) -> CaseFile:
    """``scoped=False`` only right after an authorised action (an escalation
    moves the case out of the actor's scope, yet they should see the result).

    Showing an accuser's identity is recorded first, as an internal event of
    the case (``read_via`` says through what: case_file, dossier...), in the
    same transaction. Those records, and per-event hashes, are not part of
    what the handling side sees: the commission sees who looked.
    """
    if scoped:
        row = await load_visible(session, user, complaint_id)
    else:
        found = (await session.execute(_base().where(Complaint.id == complaint_id))).one()
        row = tuple(found)  # type: ignore[assignment]
    c = row[0]
    base = to_item(user, row, now=now, settings=settings, full=True)
    if base.reporter.visible and c.identity_protected:
        await identity.record_read(session, user, c, via=read_via, at=now)
    shows_reads = await identity.sees_reads(session, user)
    evs = [e for e in await all_events(session, c.id) if shows_reads or e.kind != identity.VIEWED]
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
    signed = signatures_since_resolution(evs)
    hide_identity = not scope.sees_identity(user, c)
    return CaseFile(
        **base.model_dump(),
        disclosure=await disclosure_views.reference(session, c.disclosure_id, c.disclosure_row),
        content=c.content,
        department_code=c.department_code,
        department_region_code=c.department_region_code,
        handler_department_code=c.handler_department_code,
        handler_region_code=c.handler_region_code,
        routing_trace=list(c.routing_trace),
        result=c.result,
        historical=c.historical,
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
                public_reply=public_text(e) if e.public else "",
                data=e.data,
                at=e.created_at,
            )
            for e in evs
        ],
        media=[
            {
                "id": m.id,
                "kind": m.kind.value,
                "content_type": m.content_type,
                "size": m.size,
                "moderation": m.moderation,
            }
            for m in media
            if moderation_checks.staff_may_see(m)
        ],
        media_withheld=sum(1 for m in media if not moderation_checks.staff_may_see(m)),
    )
