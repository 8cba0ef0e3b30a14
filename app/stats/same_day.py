"""两个当天 (seed 002): a real-name report gets feedback the same day it is
accepted and the same day it is closed. This measures whether it held: of the
real-name online cases accepted (closed) in the period, how many had their
acceptance (closure) notice delivered to the resident on that same local day.

Only online filings count: they are the ones with a WeChat to notify (a
resident who came by letter hears by phone or on paper, which the system does
not see). Anonymous filings are not real-name; historical cases were closed
before the system existed. "The resident" is the filer: a follower's or a
merged child's notice does not tell the filer anything.

Kept as rollups (``stats_same_day`` per township, unit and day;
``stats_same_day_town`` per township and day) because reading every such case
and its outbox made the overview 11× slower at 1M cases than at 10k
(bench/README.md). The figure depends on the case and on its outbox, which
change at different times in different processes: the projector recounts a
case after each of its events, the notification sender after it delivers an
acceptance or closure notice. A recount reads the case's present state and
moves it from its mark (``stats_same_day_marks``) to where it counts now, so
recounting twice moves nothing; recounts take the projector's turn, so two
never interleave on one case. ``rebuild`` recounts every case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import members
from app.models import (
    Complaint,
    Notification,
    StatsSameDay,
    StatsSameDayMark,
    StatsSameDayTown,
)
from app.models.complaint import TOLD_SQL
from app.models.enums import Channel
from app.stats import rollup
from app.stats.schemas import SameDayFeedback

KINDS = ("accepted", "closed")
COUNTERS = ("accepted", "accepted_told", "closed", "closed_told")
_CASE_COLUMNS = (
    Complaint.id,
    Complaint.citizen_id,
    Complaint.township_code,
    Complaint.unit_id,
    Complaint.accepted_at,
    Complaint.closed_at,
)
# Fixed when the case is filed: a case that does not count never will.
_COUNTS = (
    Complaint.channel == Channel.online,
    Complaint.anonymous.is_(False),
    Complaint.historical.is_(False),
)


@dataclass(frozen=True, slots=True)
class Mark:
    """Where one case counts: its days of acceptance and closure, and whether
    the filer heard each on that day."""

    township_code: str
    unit_id: int
    accepted_day: date | None
    accepted_told: bool
    closed_day: date | None
    closed_told: bool


def mark_of(case: Any, sent: Iterable[tuple[str, datetime]]) -> Mark | None:
    """Where a counting case stands now; None while it has neither moment.

    ``sent``: (kind, delivery moment) of the filer's delivered notices."""
    accepted = rollup.local_date(case.accepted_at) if case.accepted_at else None
    closed = rollup.local_date(case.closed_at) if case.closed_at else None
    if accepted is None and closed is None:
        return None
    told = {(kind, rollup.local_date(at)) for kind, at in sent}
    return Mark(
        township_code=case.township_code,
        unit_id=case.unit_id,
        accepted_day=accepted,
        accepted_told=accepted is not None and ("accepted", accepted) in told,
        closed_day=closed,
        closed_told=closed is not None and ("closed", closed) in told,
    )


Rows = dict[tuple[Any, tuple[Any, ...]], dict[str, int]]


def _bump(out: Rows, mark: Mark, sign: int) -> None:
    """Add (sign 1) or take away (-1) what a mark counts, in both tables."""
    for day, kind, told in (
        (mark.accepted_day, "accepted", mark.accepted_told),
        (mark.closed_day, "closed", mark.closed_told),
    ):
        if day is None:
            continue
        for model, key in (
            (StatsSameDay, (day, mark.township_code, mark.unit_id)),
            (StatsSameDayTown, (day, mark.township_code)),
        ):
            row = out.setdefault((model, key), defaultdict(int))
            row[kind] += sign
            row[f"{kind}_told"] += sign * int(told)


def _keys(model: Any, key: tuple[Any, ...]) -> dict[str, Any]:
    names = ("day", "township_code", "unit_id")[: len(key)]
    return dict(zip(names, key, strict=True))


async def _marks_of(session: AsyncSession, cases: Sequence[Any]) -> dict[str, Mark | None]:
    """Each case's mark from its present state and its filer's delivered notices."""
    with_moment = [c.id for c in cases if c.accepted_at or c.closed_at]
    sent: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    if with_moment:
        filer = {c.id: c.citizen_id for c in cases}
        rows = await session.execute(
            select(
                Notification.complaint_id,
                Notification.recipient_id,
                Notification.kind,
                Notification.sent_at,
            ).where(
                members.one_of(session, Notification.complaint_id, with_moment),
                text(TOLD_SQL),  # ix_notifications_told, whatever the outbox holds
                Notification.recipient_kind == "citizen",
                Notification.sent_at.is_not(None),
            )
        )
        for cid, recipient, kind, at in rows.all():
            # The filer's own notice: on a protected case neither names anyone.
            if cid is not None and at is not None and recipient == filer[cid]:
                sent[cid].append((kind, at))
    return {c.id: mark_of(c, sent.get(c.id, ())) for c in cases}


async def recount(session: AsyncSession, case_ids: Iterable[str]) -> int:
    """Move each case from its mark to where it counts now; returns how many moved.

    The caller holds the projector's turn (``projector.take_turn``) and commits."""
    ids = sorted(set(case_ids))
    if not ids:
        return 0
    cases = (
        await session.execute(
            select(*_CASE_COLUMNS).where(members.one_of(session, Complaint.id, ids), *_COUNTS)
        )
    ).all()
    if not cases:
        return 0
    counted = [c.id for c in cases]
    old = {
        m.complaint_id: Mark(
            m.township_code,
            m.unit_id,
            m.accepted_day,
            m.accepted_told,
            m.closed_day,
            m.closed_told,
        )
        for m in (
            await session.execute(
                select(StatsSameDayMark).where(
                    members.one_of(session, StatsSameDayMark.complaint_id, counted)
                )
            )
        ).scalars()
    }
    new = await _marks_of(session, cases)
    moved = [cid for cid in counted if old.get(cid) != new[cid]]
    if not moved:
        return 0
    rows: Rows = {}
    for cid in moved:
        if (was := old.get(cid)) is not None:
            _bump(rows, was, -1)
        if (now := new[cid]) is not None:
            _bump(rows, now, 1)
    for model in (StatsSameDay, StatsSameDayTown):
        await rollup.upsert_many(
            session,
            model,
            ((_keys(m, key), counts) for (m, key), counts in rows.items() if m is model),
        )
    await session.execute(
        delete(StatsSameDayMark).where(
            members.one_of(session, StatsSameDayMark.complaint_id, moved)
        )
    )
    await _insert_marks(session, {cid: new[cid] for cid in moved})
    return len(moved)


async def _insert_marks(session: AsyncSession, marks: dict[str, Mark | None]) -> None:
    values = [{"complaint_id": cid, **asdict(m)} for cid, m in marks.items() if m is not None]
    if values:
        await session.execute(insert(StatsSameDayMark), values)


async def rebuild(session: AsyncSession, *, batch: int = 5000) -> int:
    """Recount every case from scratch (inside ``rollup.rebuild``, which holds
    the projector's turn); returns the cases that count."""
    for model in (StatsSameDayMark, StatsSameDay, StatsSameDayTown):
        await session.execute(delete(model))
    totals: Rows = {}
    last_id, marked = "", 0
    while True:
        cases = (
            await session.execute(
                select(*_CASE_COLUMNS)
                .where(
                    Complaint.id > last_id,
                    *_COUNTS,
                    (Complaint.accepted_at.is_not(None)) | (Complaint.closed_at.is_not(None)),
                )
                .order_by(Complaint.id)
                .limit(batch)
            )
        ).all()
        if not cases:
            break
        marks = await _marks_of(session, cases)
        for m in marks.values():
            if m is not None:
                _bump(totals, m, 1)
                marked += 1
        await _insert_marks(session, marks)
        last_id = cases[-1].id
    session.add_all(
        model(**_keys(model, key), **{c: counts.get(c, 0) for c in COUNTERS})
        for (model, key), counts in totals.items()
    )
    await session.flush()
    return marked


async def same_day_feedback(
    session: AsyncSession,
    *,
    prefix: str,
    unit_id: int | None,
    date_from: date | None,
    date_to: date | None,
) -> SameDayFeedback:
    """The figure for a region (a township prefix at the finest) and period,
    from the township table, or for one unit from the unit table."""
    model: Any = StatsSameDayTown if unit_id is None else StatsSameDay
    conds: list[ColumnElement[bool]] = [model.township_code.startswith(prefix)]
    if unit_id is not None:
        conds.append(model.unit_id == unit_id)
    if date_from is not None:
        conds.append(model.day >= date_from)
    if date_to is not None:
        conds.append(model.day <= date_to)
    sums = [func.coalesce(func.sum(getattr(model, c)), 0) for c in COUNTERS]
    row = (await session.execute(select(*sums).where(and_(true(), *conds)))).one()
    accepted, accepted_ok, closed, closed_ok = (int(v) for v in row)
    total = accepted + closed
    return SameDayFeedback(
        accepted=accepted,
        accepted_same_day=accepted_ok,
        closed=closed,
        closed_same_day=closed_ok,
        rate=round((accepted_ok + closed_ok) / total, 4) if total else None,
    )
