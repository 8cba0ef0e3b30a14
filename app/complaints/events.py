"""The per-case event chain: every step is appended with the previous hash.

hash = sha256(prev_hash ‖ canonical JSON of the event's fields), so changing,
removing or reordering any event is detected by recomputing the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import chain
from app.models import Complaint, ComplaintEvent

GENESIS = chain.GENESIS


def fields(event: ComplaintEvent) -> dict[str, Any]:
    return {
        "complaint_id": event.complaint_id,
        "seq": event.seq,
        "kind": event.kind,
        "public": event.public,
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "note": event.note,
        "data": event.data,
        "created_at": chain.moment(event.created_at),
    }


def canonical(event: ComplaintEvent) -> str:
    return chain.canonical(fields(event))


def compute_hash(prev_hash: str, event: ComplaintEvent) -> str:
    return chain.link(prev_hash, fields(event))


async def last_event(session: AsyncSession, complaint_id: str) -> ComplaintEvent | None:
    stmt = (
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == complaint_id)
        .order_by(ComplaintEvent.seq.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def build(
    complaint: Complaint,
    previous: ComplaintEvent | None,
    *,
    kind: str,
    public: bool,
    actor_kind: str,
    actor_id: int | None,
    at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> ComplaintEvent:
    event = ComplaintEvent(
        complaint_id=complaint.id,
        seq=(previous.seq + 1) if previous else 1,
        kind=kind,
        public=public,
        actor_kind=actor_kind,
        actor_id=actor_id,
        from_status=from_status,
        to_status=to_status,
        note=note,
        data=data or {},
        created_at=at.astimezone(UTC),
        prev_hash=previous.hash if previous else GENESIS,
    )
    event.hash = compute_hash(event.prev_hash, event)
    return event


async def append(session: AsyncSession, complaint: Complaint, **kw: Any) -> ComplaintEvent:
    """Append to the chain and update the statistics rollups, in one transaction."""
    from app.stats import rollup

    event = build(complaint, await last_event(session, complaint.id), **kw)
    await chain.add_entry(session, event)
    await rollup.apply(session, complaint, event)
    return event
