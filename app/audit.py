"""``ydt audit verify``: walk every hash chain (case events, disclosure events)
and report the first break."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints.events import compute_hash
from app.core.chain import first_break
from app.disclosures.events import event_hash
from app.models import Complaint, ComplaintEvent, DisclosureEvent


@dataclass(frozen=True, slots=True)
class Break:
    complaint_id: str  # for a disclosure series: "disclosure:<series id>"
    tracking_no: str
    seq: int
    reason: str

    def render(self) -> str:
        return f"BROKEN {self.tracking_no} ({self.complaint_id}) event #{self.seq}: {self.reason}"


@dataclass(frozen=True, slots=True)
class AuditReport:
    cases: int
    events: int
    first_break: Break | None
    disclosure_series: int = 0


async def verify(session: AsyncSession, *, batch: int = 500) -> AuditReport:
    cases = events_seen = 0
    last_id = ""
    while True:
        rows = (
            await session.execute(
                select(Complaint.id, Complaint.tracking_no)
                .where(Complaint.id > last_id)
                .order_by(Complaint.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        ids = [r.id for r in rows]
        chains: dict[str, list[ComplaintEvent]] = {cid: [] for cid in ids}
        stmt = (
            select(ComplaintEvent)
            .where(ComplaintEvent.complaint_id.in_(ids))
            .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
        )
        for e in (await session.execute(stmt)).scalars():
            chains[e.complaint_id].append(e)
        for cid, tracking_no in rows:
            cases += 1
            events_seen += len(chains[cid])
            found = (
                (0, "case has no events")
                if not chains[cid]
                else first_break(chains[cid], compute_hash)
            )
            if found is not None:
                return AuditReport(cases, events_seen, Break(cid, tracking_no, *found))
        last_id = ids[-1]
    return await _disclosures(session, cases, events_seen, batch=batch)


async def _disclosures(
    session: AsyncSession, cases: int, events_seen: int, *, batch: int
) -> AuditReport:
    """Disclosure events, one chain per series, read a few series at a time."""
    series = 0
    last = 0
    while True:
        ids = list(
            (
                await session.execute(
                    select(DisclosureEvent.series_id)
                    .where(DisclosureEvent.series_id > last)
                    .distinct()
                    .order_by(DisclosureEvent.series_id)
                    .limit(batch)
                )
            ).scalars()
        )
        if not ids:
            return AuditReport(cases, events_seen, None, series)
        chains: dict[int, list[DisclosureEvent]] = {sid: [] for sid in ids}
        stmt = (
            select(DisclosureEvent)
            .where(DisclosureEvent.series_id.in_(ids))
            .order_by(DisclosureEvent.series_id, DisclosureEvent.seq)
        )
        for e in (await session.execute(stmt)).scalars():
            chains[e.series_id].append(e)
        for sid in ids:
            series += 1
            events_seen += len(chains[sid])
            found = first_break(chains[sid], event_hash)
            if found is not None:
                where = f"disclosure:{sid}"
                return AuditReport(cases, events_seen, Break(where, "村务公开", *found), series)
        last = ids[-1]
