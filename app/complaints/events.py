"""The per-case event chain: every step is appended with the previous hash.

Format 2 (``chain.CURRENT``): hash = HMAC(chain key, prev_hash ‖ canonical
JSON of the event's fields), where the actor is a per-event keyed commitment
``HMAC(commit key, complaint ‖ seq ‖ actor kind ‖ actor id)`` instead of the
actor's id. Someone shown an event cannot test candidate residents against
it, and two events of one resident cannot be linked to each other. The actor
id column itself is left empty for a resident acting on a protected case
(accusation or anonymous); the commitment still binds who it was, checkable
by whoever holds the key and the sealed identity.

Format 1 rows (``chain.LEGACY``) are verified as they were written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import chain, crypto, keys
from app.models import Complaint, ComplaintEvent

GENESIS = chain.GENESIS


def legacy_fields(event: ComplaintEvent) -> dict[str, Any]:
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


def fields(event: ComplaintEvent) -> dict[str, Any]:
    """What the hash covers, in the event's own format."""
    if chain.version_of(event) == chain.LEGACY:
        return legacy_fields(event)
    return {
        "v": chain.CURRENT,
        "complaint_id": event.complaint_id,
        "seq": event.seq,
        "kind": event.kind,
        "public": event.public,
        "actor_kind": event.actor_kind,
        "actor": event.actor_commitment,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "note": event.note,
        "data": event.data,
        "created_at": chain.moment(event.created_at),
    }


def canonical(event: ComplaintEvent) -> str:
    return chain.canonical(fields(event))


def compute_hash(prev_hash: str, event: ComplaintEvent, keyring: keys.Keyring | None = None) -> str:
    """The hash ``event`` must carry after ``prev_hash`` (either format)."""
    if chain.version_of(event) == chain.LEGACY:
        return chain.link(prev_hash, legacy_fields(event))
    return chain.keyed(prev_hash, fields(event), keyring)


def actor_commitment(
    complaint_id: str,
    seq: int,
    actor_kind: str,
    actor_id: int | None,
    keyring: keys.Keyring | None = None,
) -> str:
    """Per event, so the same resident's events do not share a value."""
    return crypto.commit(
        keyring or keys.current(),
        "event-actor",
        f"{complaint_id}:{seq}:{actor_kind}:{'' if actor_id is None else actor_id}",
    )


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
    seq = (previous.seq + 1) if previous else 1
    hidden = actor_kind == "citizen" and complaint.identity_protected
    event = ComplaintEvent.built(
        complaint_id=complaint.id,
        seq=seq,
        kind=kind,
        public=public,
        actor_kind=actor_kind,
        actor_id=None if hidden else actor_id,
        actor_commitment=actor_commitment(complaint.id, seq, actor_kind, actor_id),
        hash_version=chain.CURRENT,
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
    """Append to the chain. The insert queues the event for the statistics
    projector (a trigger, migration 0017), which updates the rollups after the
    commit (app/stats/projector.py)."""
    event = build(complaint, await last_event(session, complaint.id), **kw)
    await chain.add_entry(session, event)
    return event
