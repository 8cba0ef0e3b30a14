"""A disclosure series' audit trail: every change appends an event carrying
its predecessor's hash, so an edited or removed event breaks the chain.

Format 2 links are keyed with the chain key (``app/core/chain.py``); the
actors are staff, whose ids are no secret, so the fields are as in format 1
plus the version. Format 1 rows still verify as written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import chain
from app.models import Disclosure, DisclosureEvent, StaffUser

GENESIS = chain.GENESIS


def fields(e: DisclosureEvent) -> dict[str, Any]:
    legacy = chain.version_of(e) == chain.LEGACY
    return ({} if legacy else {"v": chain.CURRENT}) | {
        "series_id": e.series_id,
        "seq": e.seq,
        "disclosure_id": e.disclosure_id,
        "kind": e.kind,
        "actor_id": e.actor_id,
        "note": e.note,
        "data": e.data,
        "created_at": chain.moment(e.created_at),
    }


def event_hash(prev: str, e: DisclosureEvent) -> str:
    if chain.version_of(e) == chain.LEGACY:
        return chain.link(prev, fields(e))
    return chain.keyed(prev, fields(e))


async def append(
    session: AsyncSession,
    d: Disclosure,
    kind: str,
    actor: StaffUser,
    now: datetime,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> DisclosureEvent:
    assert d.series_id is not None
    last = (
        await session.execute(
            select(DisclosureEvent)
            .where(DisclosureEvent.series_id == d.series_id)
            .order_by(DisclosureEvent.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    e = DisclosureEvent(
        series_id=d.series_id,
        seq=(last.seq + 1) if last else 1,
        disclosure_id=d.id,
        kind=kind,
        actor_id=actor.id,
        hash_version=chain.CURRENT,
        note=note,
        data=data or {},
        created_at=now.astimezone(UTC),
        prev_hash=last.hash if last else GENESIS,
    )
    e.hash = event_hash(e.prev_hash, e)
    await chain.add_entry(session, e)
    return e
