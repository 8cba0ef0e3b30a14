"""``ydt audit verify``: recompute every case's event chain, report the first break."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints.events import GENESIS, compute_hash
from app.models import Complaint, ComplaintEvent


@dataclass(frozen=True, slots=True)
class Break:
    complaint_id: str
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
            return AuditReport(cases, events_seen, None)
        ids = [r.id for r in rows]
        tracking = {r.id: r.tracking_no for r in rows}
        evs = (
            (
                await session.execute(
                    select(ComplaintEvent)
                    .where(ComplaintEvent.complaint_id.in_(ids))
                    .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
                )
            )
            .scalars()
            .all()
        )
        chains: dict[str, list[ComplaintEvent]] = {cid: [] for cid in ids}
        for e in evs:
            chains[e.complaint_id].append(e)
        for cid in ids:
            cases += 1
            prev = GENESIS
            chain = chains[cid]
            if not chain:
                return AuditReport(
                    cases, events_seen, Break(cid, tracking[cid], 0, "case has no events")
                )
            for expected_seq, e in enumerate(chain, start=1):
                events_seen += 1
                if e.seq != expected_seq:
                    return AuditReport(
                        cases,
                        events_seen,
                        Break(
                            cid, tracking[cid], expected_seq, f"event #{expected_seq} is missing"
                        ),
                    )
                if e.prev_hash != prev:
                    return AuditReport(
                        cases,
                        events_seen,
                        Break(cid, tracking[cid], e.seq, "previous-hash link does not match"),
                    )
                if compute_hash(prev, e) != e.hash:
                    return AuditReport(
                        cases,
                        events_seen,
                        Break(
                            cid, tracking[cid], e.seq, "content does not match its hash (edited)"
                        ),
                    )
                prev = e.hash
        last_id = ids[-1]
