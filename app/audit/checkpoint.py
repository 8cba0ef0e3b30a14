"""Checkpoints: every chain head under one signed Merkle root.

A hash chain shows its events were not edited, but not that its newest events
are all still there, that the case itself still exists, or that nobody
recomputed the whole chain. A checkpoint anchors, at one moment, the head of
every case chain and every disclosure series chain: the leaves
``H(kind, id, seq, head hash)`` go under a Merkle root (``merkle.py``), the
root is signed with an Ed25519 key kept outside the database
(``signing.py``), and each checkpoint carries the previous one's hash.

``audit_heads`` holds the latest checkpoint's leaves. A chain only moves
forward in it, and only along its own events: when a chain is found shorter,
different at its anchored event, or gone, its anchored head is kept and the
checkpoint lists the anomaly, so the next checkpoint cannot launder it.

Several workers make exactly one checkpoint per period: the period key and
the position in the checkpoint chain are unique, the row is claimed first,
and the loser's insert fails (it waits for the winner's commit on
PostgreSQL, and SQLite's writers are serial anyway).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import merkle
from app.audit import repository as repo
from app.audit.signing import Signer, load_signer
from app.audit.state import canonical, moment
from app.core.chain import GENESIS
from app.core.config import Settings
from app.models import AuditCheckpoint, AuditHead

logger = logging.getLogger(__name__)

FORMAT = 1
DOMAIN = b"ydt-audit-checkpoint\n"
MAX_ANOMALIES = 100


def header(cp: Any) -> dict[str, Any]:
    """What a checkpoint's hash and signature cover."""
    return {
        "format": cp.format,
        "seq": cp.seq,
        "period": cp.period,
        "created_at": moment(cp.created_at),
        "prev_hash": cp.prev_hash,
        "root": cp.root,
        "cases": cp.cases,
        "series": cp.series,
        "key_id": cp.key_id,
    }


def message(head: dict[str, Any]) -> bytes:
    return DOMAIN + canonical(head).encode()


def header_hash(head: dict[str, Any]) -> str:
    return hashlib.sha256(message(head)).hexdigest()


def period_key(now: datetime, minutes: int) -> str:
    span = minutes * 60
    start = int(now.timestamp()) // span * span
    return f"periodic:{minutes}:{datetime.fromtimestamp(start, UTC):%Y-%m-%dT%H:%MZ}"


def manual_key(now: datetime) -> str:
    return f"manual:{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z:{secrets.token_hex(4)}"


async def exists(session: AsyncSession, period: str) -> bool:
    found = await session.execute(
        select(AuditCheckpoint.id).where(AuditCheckpoint.period == period)
    )
    return found.first() is not None


async def create(
    session: AsyncSession, signer: Signer, *, now: datetime, period: str, batch: int = 1000
) -> AuditCheckpoint | None:
    """Make the next checkpoint; None when another writer made this period's
    (or took the next position in the chain) first. Flushes, never commits."""
    latest = await repo.latest_checkpoint(session)
    cp = AuditCheckpoint(
        seq=latest.seq + 1 if latest else 1,
        period=period,
        format=FORMAT,
        created_at=now,
        prev_hash=latest.hash if latest else GENESIS,
        root="",
        bucket_roots=[],
        cases=0,
        series=0,
        key_id=signer.key_id,
        hash="",
        signature="",
        anomalies=[],
    )
    try:
        async with session.begin_nested():
            session.add(cp)
            await session.flush()
    except IntegrityError:
        return None
    anomalies, added = await _advance(session, cp.id, repo.CASE, batch=batch)
    more, added_series = await _advance(session, cp.id, repo.DISCLOSURE, batch=batch)
    anomalies += more
    roots, counts = await bucket_roots(session)
    await _restat(session, added + added_series, counts[repo.CASE] + counts[repo.DISCLOSURE])
    cp.bucket_roots = [r.hex() for r in roots]
    cp.root = merkle.top(roots).hex()
    cp.cases, cp.series = counts[repo.CASE], counts[repo.DISCLOSURE]
    cp.anomalies = anomalies[:MAX_ANOMALIES]
    head = header(cp)
    cp.hash = header_hash(head)
    cp.signature = signer.sign(message(head))
    if latest is not None:
        # Bucket roots serve inclusion proofs against the current leaves only;
        # the signed root still commits to the old ones.
        await session.execute(
            update(AuditCheckpoint).where(AuditCheckpoint.id == latest.id).values(bucket_roots=[])
        )
    await session.flush()
    for line in anomalies:
        logger.error("audit checkpoint: %s", line, extra={"checkpoint": cp.seq})
    return cp


async def periodic(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> AuditCheckpoint | None:
    """The worker's checkpoint for the current period, if nobody made it yet."""
    if settings.checkpoint_minutes <= 0:
        return None
    period = period_key(now, settings.checkpoint_minutes)
    async with sessionmaker() as session:
        if await exists(session, period):
            return None
        made = await create(session, load_signer(settings), now=now, period=period)
        await session.commit()
    return made


async def _restat(session: AsyncSession, added: int, total: int) -> None:
    """Refresh PostgreSQL's statistics of ``audit_heads`` when this checkpoint
    added more than a tenth of its rows (a first checkpoint adds them all).

    Until autovacuum's next analyze, which a server may not run at all (this
    machine's has it off), the planner took the table for empty. The
    verifier's anchor lookups by chain id (500 per read) then scanned every
    head: 0.4 s a read, 33 s per 50k cases at 1M, against 1.5 ms once
    analysed (bench/README.md). ANALYZE samples, so at 1M it costs a fraction
    of a second; without the right to run it PostgreSQL only warns."""
    if added == 0 or added * 10 <= total - added:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("ANALYZE audit_heads"))


async def _advance(
    session: AsyncSession, checkpoint_id: int, kind: str, *, batch: int
) -> tuple[list[str], int]:
    """Move each chain's anchored head forward to its current head, along its
    own events only; report (and keep) chains that moved any other way.
    Returns the anomalies and how many chains were anchored for the first time."""
    anomalies: list[str] = []
    added = 0
    walk = repo.case_walk if kind == repo.CASE else repo.series_walk
    after: Any = "" if kind == repo.CASE else 0
    while page := await walk(session, after, batch):
        last = page[-1].chain_id
        after = last if kind == repo.CASE else int(last)
        new_rows: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for chain in page:
            head, was = chain.head, chain.anchor
            name = _name(kind, chain.chain_id, chain.label)
            if head is None:
                if was is not None:
                    anomalies.append(f"{name}: no events left, anchored at event #{was.seq}")
                continue
            if was is None:
                new_rows.append(_row(kind, chain.chain_id, head, chain.label, checkpoint_id))
            elif (was.seq, was.head) == (head.seq, head.hash):
                continue
            elif head.seq < was.seq:
                anomalies.append(
                    f"{name}: ends at event #{head.seq}, anchored at #{was.seq} (events deleted)"
                )
            elif head.seq > was.seq and chain.at_anchor == was.head:
                updates.append(_row(kind, chain.chain_id, head, chain.label, checkpoint_id))
            else:
                anomalies.append(f"{name}: event #{was.seq} differs from the anchored one")
        added += len(new_rows)
        if new_rows:
            await session.execute(insert(AuditHead), new_rows)
        if updates:
            await session.execute(update(AuditHead), updates)
    for chain_id, was in await repo.anchored_without_chain(session, kind):
        anomalies.append(f"{_name(kind, chain_id, was.label)}: gone, anchored at event #{was.seq}")
    return anomalies, added


def _name(kind: str, chain_id: str, label: str | None) -> str:
    if kind == repo.CASE:
        return f"case {label or '?'} ({chain_id})"
    return f"disclosure series {chain_id}"


def _row(
    kind: str, chain_id: str, head: repo.Head, label: str | None, checkpoint_id: int
) -> dict[str, Any]:
    return {
        "kind": kind,
        "chain_id": chain_id,
        "seq": head.seq,
        "head_hash": head.hash,
        "bucket": merkle.bucket_of(kind, chain_id),
        "label": label,
        "checkpoint_id": checkpoint_id,
    }


async def bucket_roots(session: AsyncSession) -> tuple[list[bytes], dict[str, int]]:
    """The root of each bucket of anchored heads, and the count of each kind.

    A bucket at a time: at 1M heads one streamed read of every head, with
    every leaf held until the end, took 24 s; 256 reads of a bucket's ~4k
    heads take 11 s, and hold one bucket (bench/README.md). Inside a
    checkpoint they see its own transaction's heads; ``ydt audit verify``
    reads them in one snapshot (``verifier``)."""
    counts = {repo.CASE: 0, repo.DISCLOSURE: 0}
    roots = []
    for b in range(merkle.BUCKETS):
        members = await repo.bucket_heads(session, b)
        for kind, *_ in members:
            counts[kind] = counts.get(kind, 0) + 1
        roots.append(merkle.root([merkle.leaf(*m) for m in members]))
    return roots, counts


class Inclusion(NamedTuple):
    """A chain head as the latest checkpoint anchors it, with the proof."""

    head_hash: str
    checkpoint_id: int
    proof: merkle.InclusionProof


async def inclusion(session: AsyncSession, kind: str, chain_id: str | int) -> Inclusion | None:
    """The head of chain (``"case"``, complaint id) or (``"disclosure"``,
    series id) that the latest checkpoint covers, that checkpoint's id, and a
    Merkle proof leading from the leaf to its signed root; None when no
    checkpoint covers the chain yet. The anchored head may be older than the
    chain's newest event: events after it await the next checkpoint.
    """
    chain_id = str(chain_id)
    cp = await repo.latest_checkpoint(session)
    mine = await session.execute(
        select(AuditHead.bucket, AuditHead.seq, AuditHead.head_hash).where(
            AuditHead.kind == kind, AuditHead.chain_id == chain_id
        )
    )
    row = mine.first()
    if cp is None or row is None or len(cp.bucket_roots) != merkle.BUCKETS:
        return None
    members = await repo.bucket_heads(session, row.bucket)
    leaves = [merkle.leaf(*m) for m in members]
    index = next(i for i, m in enumerate(members) if m[:2] == (kind, chain_id))
    proof = merkle.InclusionProof(
        kind=kind,
        chain_id=chain_id,
        seq=row.seq,
        head_hash=row.head_hash,
        bucket=row.bucket,
        index=index,
        size=len(leaves),
        bucket_path=[h.hex() for h in merkle.path(index, leaves)],
        top_path=[
            h.hex() for h in merkle.path(row.bucket, [bytes.fromhex(r) for r in cp.bucket_roots])
        ],
    )
    if proof.root() != cp.root:
        logger.error(
            "audit: anchored heads of bucket %s do not lead to checkpoint #%s's root",
            row.bucket,
            cp.seq,
        )
        return None
    return Inclusion(row.head_hash, cp.id, proof)


async def checkpoint_now(
    session: AsyncSession, settings: Settings, *, now: datetime
) -> AuditCheckpoint | None:
    """``ydt audit checkpoint``: one now, whatever the period."""
    return await create(session, load_signer(settings), now=now, period=manual_key(now))
