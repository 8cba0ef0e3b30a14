"""Queries of the audit: chain heads, anchored heads, checkpoints.

Everything reads columns, not entities, so walking a million chains does not
fill a session's identity map.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import String, cast, exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditCheckpoint, AuditHead, Complaint, ComplaintEvent, DisclosureEvent

CASE = "case"
DISCLOSURE = "disclosure"


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    head: str
    label: str | None


@asynccontextmanager
async def reader(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A session on the caller's connection and transaction with its own
    identity map, dropped batch by batch: the caller's session and its
    objects are left exactly as they were."""
    await session.flush()
    conn = await session.connection()
    own = AsyncSession(
        bind=conn, expire_on_commit=False, autoflush=False, join_transaction_mode="rollback_only"
    )
    try:
        yield own
    finally:
        own.expunge_all()
        await own.close()


async def complaint_page(session: AsyncSession, after: str, limit: int) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(Complaint.id, Complaint.tracking_no)
        .where(Complaint.id > after)
        .order_by(Complaint.id)
        .limit(limit)
    )
    return [(r.id, r.tracking_no) for r in rows]


async def series_page(session: AsyncSession, after: int, limit: int) -> list[int]:
    rows = await session.execute(
        select(DisclosureEvent.series_id)
        .where(DisclosureEvent.series_id > after)
        .distinct()
        .order_by(DisclosureEvent.series_id)
        .limit(limit)
    )
    return list(rows.scalars())


async def case_heads(session: AsyncSession, ids: Sequence[str]) -> dict[str, Head]:
    newest = (
        select(ComplaintEvent.complaint_id, func.max(ComplaintEvent.seq).label("seq"))
        .where(ComplaintEvent.complaint_id.in_(ids))
        .group_by(ComplaintEvent.complaint_id)
        .subquery()
    )
    rows = await session.execute(
        select(ComplaintEvent.complaint_id, ComplaintEvent.seq, ComplaintEvent.hash).join(
            newest,
            (newest.c.complaint_id == ComplaintEvent.complaint_id)
            & (newest.c.seq == ComplaintEvent.seq),
        )
    )
    return {r.complaint_id: Head(r.seq, r.hash) for r in rows}


async def series_heads(session: AsyncSession, ids: Sequence[int]) -> dict[str, Head]:
    newest = (
        select(DisclosureEvent.series_id, func.max(DisclosureEvent.seq).label("seq"))
        .where(DisclosureEvent.series_id.in_(ids))
        .group_by(DisclosureEvent.series_id)
        .subquery()
    )
    rows = await session.execute(
        select(DisclosureEvent.series_id, DisclosureEvent.seq, DisclosureEvent.hash).join(
            newest,
            (newest.c.series_id == DisclosureEvent.series_id)
            & (newest.c.seq == DisclosureEvent.seq),
        )
    )
    return {str(r.series_id): Head(r.seq, r.hash) for r in rows}


async def hashes_at(
    session: AsyncSession, kind: str, points: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """The hash of event (chain, seq) for each point that still exists."""
    if not points:
        return {}
    if kind == CASE:
        rows = await session.execute(
            select(ComplaintEvent.complaint_id, ComplaintEvent.seq, ComplaintEvent.hash).where(
                tuple_(ComplaintEvent.complaint_id, ComplaintEvent.seq).in_(list(points))
            )
        )
        return {(r[0], r[1]): r[2] for r in rows}
    found = await session.execute(
        select(DisclosureEvent.series_id, DisclosureEvent.seq, DisclosureEvent.hash).where(
            tuple_(DisclosureEvent.series_id, DisclosureEvent.seq).in_(
                [(int(c), s) for c, s in points]
            )
        )
    )
    return {(str(r[0]), r[1]): r[2] for r in found}


async def anchored(session: AsyncSession, kind: str, ids: Sequence[str]) -> dict[str, Anchor]:
    rows = await session.execute(
        select(AuditHead.chain_id, AuditHead.seq, AuditHead.head_hash, AuditHead.label).where(
            AuditHead.kind == kind, AuditHead.chain_id.in_(list(ids))
        )
    )
    return {r.chain_id: Anchor(r.seq, r.head_hash, r.label) for r in rows}


async def anchored_without_chain(session: AsyncSession, kind: str) -> list[tuple[str, Anchor]]:
    """Anchored chains that are gone: a case whose row was deleted, a series
    with no event left. (A case row left without events is reported by the
    walk over the rows.)"""
    if kind == CASE:
        alive = exists().where(Complaint.id == AuditHead.chain_id)
    else:
        # Compared as text: casting every anchored id to a number would fail on
        # case ids wherever the planner evaluates it before the kind filter.
        alive = exists().where(cast(DisclosureEvent.series_id, String) == AuditHead.chain_id)
    rows = await session.execute(
        select(AuditHead.chain_id, AuditHead.seq, AuditHead.head_hash, AuditHead.label)
        .where(AuditHead.kind == kind, ~alive)
        .order_by(AuditHead.chain_id)
    )
    return [(r.chain_id, Anchor(r.seq, r.head_hash, r.label)) for r in rows]


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    return (
        await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    ).scalar_one_or_none()
