"""Checkpoints: one per period across workers, inclusion proofs for the
dossier, anomalies kept, and an export that names what the database lost."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import checkpoint, exported, inclusion, merkle, verifier
from app.audit.checkpoint import header, message
from app.audit.signing import check, load_signer
from app.models import AuditCheckpoint, AuditHead, ComplaintEvent
from tests.audit.helpers import (
    SETTINGS,
    TRUSTED,
    Team,
    about,
    audit,
    chain,
    drop_case,
    make_checkpoint,
    rechain,
    steps,
    team,
    worked_case,
)
from tests.conftest import DEFAULT_NOW, make_settings

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
async def t(client: AsyncClient, connection: AsyncConnection) -> Team:
    return await team(client, connection)


async def test_inclusion_proves_the_anchored_head_under_the_signed_root(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    cid = (await worked_case(client, t))["id"]
    assert await inclusion(session, "case", cid) is None  # no checkpoint yet
    cp = await make_checkpoint(session)
    head = (await chain(session, cid))[-1]
    found = await inclusion(session, "case", cid)
    assert found is not None
    head_hash, checkpoint_id, proof = found
    assert (head_hash, checkpoint_id, proof.seq) == (head.hash, cp.id, head.seq)
    assert proof.root() == cp.root
    assert check(load_signer(SETTINGS).public_hex, message(header(cp)), cp.signature)
    json.dumps(proof.as_dict())  # the dossier can print or encode it
    # Newer events wait for the next checkpoint; the proof stays the anchored one.
    await steps(client, cid, (t.zhang, "sign", {"slot": "handler"}))
    later = await inclusion(session, "case", cid)
    assert later is not None and later.head_hash == head.hash
    assert await inclusion(session, "case", "0" * 32) is None
    # The next checkpoint moves the anchor forward along the chain.
    nxt = await make_checkpoint(session, DEFAULT_NOW + timedelta(hours=1))
    assert nxt.anomalies == [] and nxt.prev_hash == cp.hash
    moved = await inclusion(session, "case", cid)
    newest = (await chain(session, cid))[-1]
    assert moved is not None and (moved.head_hash, moved.checkpoint_id) == (newest.hash, nxt.id)
    assert moved.proof.seq == newest.seq == head.seq + 1 and moved.proof.root() == nxt.root
    assert about(await audit(session), cid) == []


async def test_a_shortened_chain_stays_anchored_at_the_next_checkpoint(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    """A checkpoint made after the deletion must not launder it."""
    filed = await worked_case(client, t)
    events = await chain(session, filed["id"])
    await make_checkpoint(session)
    await session.execute(delete(ComplaintEvent).where(ComplaintEvent.id == events[-1].id))
    later = await make_checkpoint(session, DEFAULT_NOW + timedelta(hours=1))
    assert any(filed["tracking_no"] in line and "deleted" in line for line in later.anomalies)
    anchored = await session.get(AuditHead, ("case", filed["id"]))
    assert anchored is not None and anchored.seq == len(events)
    found = about(await audit(session), filed["id"])
    assert any("deleted" in f.reason for f in found)


async def test_a_checkpoint_that_anchors_most_heads_refreshes_their_statistics(
    client: AsyncClient, t: Team, session: AsyncSession, engine: AsyncEngine
) -> None:
    """PostgreSQL planned the anchor lookups for an empty table after a first
    checkpoint until an analyze (autovacuum may be off); the checkpoint runs it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's planner keeps no row estimates to go stale")
    await worked_case(client, t)
    await worked_case(client, t)
    await make_checkpoint(session)  # the first: every head is new
    anchored = (await session.execute(select(func.count()).select_from(AuditHead))).scalar_one()
    estimate = await session.execute(
        text("SELECT reltuples FROM pg_class WHERE relname = 'audit_heads'")
    )
    assert anchored >= 2 and estimate.scalar_one() == anchored


async def test_a_rewritten_chain_that_then_grows_stays_anchored_at_its_old_head(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    """An insider with the chain key edits the anchored event, recomputes
    every link, then lets the case go on: the chain verifies by itself and
    is longer than its anchor, but its event at the anchored position is
    not the anchored one, so the next checkpoint reports it and keeps the
    old head rather than moving forward onto the rewritten chain."""
    filed = await worked_case(client, t)
    honest = await worked_case(client, t)
    await make_checkpoint(session)
    events = await chain(session, filed["id"])
    anchored_at, anchored_hash = len(events), events[-1].hash
    events[1].note = (events[1].note or "") + " (edited)"
    await rechain(session, events)
    await steps(client, filed["id"], (t.zhang, "sign", {"slot": "handler"}))
    await steps(client, honest["id"], (t.zhang, "sign", {"slot": "handler"}))
    later = await make_checkpoint(session, DEFAULT_NOW + timedelta(hours=1))
    assert [line for line in later.anomalies if filed["tracking_no"] in line] == [
        f"case {filed['tracking_no']} ({filed['id']}): "
        f"event #{anchored_at} differs from the anchored one"
    ]
    kept = await session.get(AuditHead, ("case", filed["id"]), populate_existing=True)
    assert kept is not None and (kept.seq, kept.head_hash) == (anchored_at, anchored_hash)
    assert (await chain(session, filed["id"]))[anchored_at - 1].hash != anchored_hash
    # The honest case beside it moves forward as usual.
    moved = await session.get(AuditHead, ("case", honest["id"]), populate_existing=True)
    newest = (await chain(session, honest["id"]))[-1]
    assert moved is not None and (moved.seq, moved.head_hash) == (newest.seq, newest.hash)


async def test_an_exported_checkpoint_names_a_case_dropped_with_its_anchor(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    filed = await worked_case(client, t)
    await make_checkpoint(session)
    doc = await exported.export(session, TRUSTED, everything=True, now=DEFAULT_NOW)
    assert doc["public_keys"] == TRUSTED and len(doc["checkpoints"]) >= 1
    kept = exported.load(json.dumps(doc).encode())
    assert kept.problems() == []
    await drop_case(session, filed["id"])
    await session.execute(
        delete(AuditHead).where(AuditHead.kind == "case", AuditHead.chain_id == filed["id"])
    )
    alone = await audit(session)
    assert about(alone, filed["id"]) == []  # the database alone cannot name it ...
    assert any("bucket" in f.reason for f in alone.findings)  # ... but sees the anchors moved
    (named,) = about(await audit(session, exported=kept), filed["id"])
    assert "case dropped" in named.reason and named.tracking_no == filed["tracking_no"]


def test_a_forged_export_is_refused_or_reported() -> None:
    with pytest.raises(ValueError, match="not an exported checkpoint"):
        exported.load(b'{"format": "something else"}')
    with pytest.raises(ValueError, match="not JSON"):
        exported.load(b"\xff")
    with pytest.raises(ValueError, match="malformed"):
        exported.load(json.dumps({"format": exported.FORMAT, "checkpoints": [{}]}).encode())


async def test_two_workers_make_exactly_one_checkpoint_per_period(
    committing_engine: AsyncEngine,
) -> None:
    """Committed, on separate connections, as two `ydt worker` processes would."""
    engine = committing_engine
    settings = make_settings(checkpoint_minutes=60)
    makers = [async_sessionmaker(engine, expire_on_commit=False) for _ in range(2)]
    now = DEFAULT_NOW + timedelta(days=3650)  # a period no other test uses
    try:
        made = await asyncio.gather(*(checkpoint.periodic(m, settings, now=now) for m in makers))
        assert sum(m is not None for m in made) == 1
        again = await checkpoint.periodic(makers[0], settings, now=now + timedelta(minutes=5))
        assert again is None  # same period
        async with makers[0]() as s:
            period = checkpoint.period_key(now, 60)
            count = await s.execute(select(func.count()).where(AuditCheckpoint.period == period))
            assert count.scalar_one() == 1
            report = await audit(s)
            assert [f for f in report.findings if f.part == "checkpoint"] == []
    finally:
        async with makers[0]() as s:
            await s.execute(delete(AuditHead))
            await s.execute(delete(AuditCheckpoint))
            await s.commit()


async def test_a_verification_reads_one_snapshot_while_a_checkpoint_commits(
    committing_engine: AsyncEngine,
) -> None:
    """`ydt audit verify` on a live system: a worker's checkpoint that commits
    while it reads (here: an anchored head moved under it) must not show as
    heads "altered". Under read committed the verifier's later reads saw it."""
    engine = committing_engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's transaction is one snapshot already")
    maker = async_sessionmaker(engine, expire_on_commit=False)
    settings = make_settings(checkpoint_minutes=60)
    made = await checkpoint.periodic(maker, settings, now=DEFAULT_NOW + timedelta(days=3651))
    assert made is not None
    moved = {
        "kind": "case",
        "chain_id": "moved-under-the-verifier",
        "seq": 1,
        "head_hash": "0" * 64,
        "bucket": merkle.bucket_of("case", "moved-under-the-verifier"),
        "checkpoint_id": made.id,
    }
    try:
        async with maker() as reading:
            await verifier.one_snapshot(reading)
            isolation = await reading.execute(text("SHOW transaction_isolation"))
            assert isolation.scalar_one() == "repeatable read"
            before, _ = await checkpoint.bucket_roots(reading)
            async with maker() as worker:
                await worker.execute(insert(AuditHead).values(**moved))
                await worker.commit()
            report = await audit(reading)
            assert [f for f in report.findings if f.part == "checkpoint"] == []
            assert (await checkpoint.bucket_roots(reading))[0] == before
        async with maker() as later:  # a verification started now sees the move
            report = await audit(later)
            assert any("anchored heads altered" in f.reason for f in report.findings)
    finally:
        async with maker() as s:
            await s.execute(delete(AuditHead))
            await s.execute(delete(AuditCheckpoint))
            await s.commit()
