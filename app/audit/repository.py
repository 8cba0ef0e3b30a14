"""Queries of the audit: chain heads, anchored heads, checkpoints.

Everything reads columns, not entities, so walking a million chains does not
fill a session's identity map.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, exists, func, select, tuple_
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


@dataclass(frozen=True, slots=True)
class Walked:
    """One chain as a checkpoint finds it: its head now, its anchored head,
    and the hash its event at the anchored position has now (None if gone)."""

    chain_id: str
    label: str | None
    head: Head | None
    anchor: Anchor | None
    at_anchor: str | None


def _case_walk_statement() -> Any:
    """A page of cases in id order, each with its newest event, its anchored
    head and its event at the anchored position: every part a lookup on a
    primary or unique key, one statement with the same text for every page.

    It replaces four statements a page (the cases, their heads by a grouped
    ``IN`` of a thousand ids, their anchors by another, the events at the
    anchors by a third), whose cost grew with ``audit_heads`` while a first
    checkpoint filled it: at 1M cases the worker's first checkpoint ran for
    more than ten minutes without finishing (bench/README.md); this walk
    takes about a minute there, inserts included."""
    events = ComplaintEvent.__table__
    newest = (
        select(func.max(events.c.seq))
        .where(events.c.complaint_id == Complaint.id)
        .scalar_subquery()
    )
    page = (
        select(Complaint.id, Complaint.tracking_no, newest.label("head_seq"))
        .where(Complaint.id > bindparam("after"))
        .order_by(Complaint.id)
        .limit(bindparam("n"))
        .subquery("page")
    )
    head, then = events.alias("head"), events.alias("then")
    anchor = AuditHead.__table__.alias("anchor")
    return (
        select(
            page.c.id,
            page.c.tracking_no,
            page.c.head_seq,
            head.c.hash,
            anchor.c.seq,
            anchor.c.head_hash,
            anchor.c.label,
            then.c.hash,
        )
        .select_from(
            page.outerjoin(
                head, and_(head.c.complaint_id == page.c.id, head.c.seq == page.c.head_seq)
            )
            .outerjoin(anchor, and_(anchor.c.kind == CASE, anchor.c.chain_id == page.c.id))
            .outerjoin(then, and_(then.c.complaint_id == page.c.id, then.c.seq == anchor.c.seq))
        )
        .order_by(page.c.id)
    )


_CASE_WALK = _case_walk_statement()


async def case_walk(session: AsyncSession, after: str, limit: int) -> list[Walked]:
    """The next ``limit`` case chains after id ``after``, as a checkpoint needs them."""
    rows = await session.execute(_CASE_WALK, {"after": after, "n": limit})
    return [
        Walked(
            chain_id=r[0],
            label=r[1],
            head=Head(r[2], r[3]) if r[2] is not None else None,
            anchor=Anchor(r[4], r[5], r[6]) if r[4] is not None else None,
            at_anchor=r[7],
        )
        for r in rows
    ]


async def series_walk(session: AsyncSession, after: int, limit: int) -> list[Walked]:
    """The next ``limit`` disclosure series after ``after``, as ``case_walk``
    gives cases (a county has hundreds of series, not a million)."""
    series = await series_page(session, after, limit)
    if not series:
        return []
    ids = [str(s) for s in series]
    heads = await series_heads(session, series)
    old = await anchored(session, DISCLOSURE, ids)
    found = await hashes_at(session, [(c, a.seq) for c, a in old.items()])
    return [
        Walked(
            chain_id=c,
            label=None,
            head=heads.get(c),
            anchor=old.get(c),
            at_anchor=found.get((c, old[c].seq)) if c in old else None,
        )
        for c in ids
    ]


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


async def series_page(session: AsyncSession, after: int, limit: int) -> list[int]:
    rows = await session.execute(
        select(DisclosureEvent.series_id)
        .where(DisclosureEvent.series_id > after)
        .distinct()
        .order_by(DisclosureEvent.series_id)
        .limit(limit)
    )
    return list(rows.scalars())


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
    session: AsyncSession, points: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """The hash of disclosure event (series, seq) for each point that still
    exists (cases get theirs inside ``case_walk``)."""
    if not points:
        return {}
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


_BUCKET = select(AuditHead.kind, AuditHead.chain_id, AuditHead.seq, AuditHead.head_hash).where(
    AuditHead.bucket == bindparam("bucket")
)


async def bucket_heads(session: AsyncSession, bucket: int) -> list[tuple[str, str, int, str]]:
    """One Merkle bucket's anchored heads, (kind, chain id, seq, head hash), in
    the tree's leaf order. Sorted here, not by ``ORDER BY``: the order must be
    Python's, code point by code point, whatever the database's collation."""
    rows = await session.execute(_BUCKET, {"bucket": bucket})
    return sorted((r[0], r[1], r[2], r[3]) for r in rows)


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    return (
        await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    ).scalar_one_or_none()
