"""Every kind of tampering an insider with the database could try is detected
and named by ``verify``, on SQLite and PostgreSQL; a clean database verifies
clean."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit import exported, merkle
from app.audit.checkpoint import bucket_roots, header, header_hash
from app.core.chain import LEGACY
from app.models import AuditCheckpoint, AuditHead, Complaint, ComplaintEvent
from tests.audit.helpers import (
    TRUSTED,
    Team,
    about,
    audit,
    chain,
    drop_case,
    make_checkpoint,
    rechain,
    steps,
    swap,
    team,
    worked_case,
)
from tests.conftest import DEFAULT_NOW
from tests.workflow.helpers import file_case

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
async def t(client: AsyncClient, connection: AsyncConnection) -> Team:
    return await team(client, connection)


async def test_a_full_lifecycle_replays_clean_and_is_anchored(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    """Every action, a verdict's reopening, escalation, an accusation and an
    anonymous filing: the rows equal their replay, and nothing is reported."""
    a = (await file_case(client, t.resident))["id"]
    await steps(
        client,
        a,
        (t.zhang, "accept", {}),
        (t.zhang, "assign", {"cadre_id": t.li_id}),
        (t.zhang, "extend", {"days": 5, "note": "需要现场核查"}),
        (t.zhang, "transfer", {}),
        (t.zhang, "reply", {"public_reply": "已转相关部门核查"}),
        (t.zhang, "resolve", {"public_reply": "已整改"}),
    )
    rating = {"score": 1, "satisfaction": "unsatisfied", "comment": "没有真正解决"}
    r = await client.post(f"/api/v1/complaints/{a}/rating", headers=t.resident, json=rating)
    assert r.status_code in (200, 201), r.text
    await steps(
        client,
        a,
        (t.zhang, "resolve", {"public_reply": "已重新整改并公示"}),
        (t.zhang, "sign", {"slot": "handler"}),
        (t.wang, "sign", {"slot": "supervising_leader"}),
        (t.chen, "sign", {"slot": "principal_leader"}),
    )
    rating = {"score": 5, "satisfaction": "satisfied"}
    r = await client.post(f"/api/v1/complaints/{a}/rating", headers=t.resident, json=rating)
    assert r.status_code in (200, 201), r.text
    row = await session.get(Complaint, a)
    assert row is not None and row.status.value == "closed" and row.reopen_count == 1
    b = (await file_case(client, t.resident))["id"]
    await steps(client, b, (t.zhang, "escalate", {"note": "涉及多个部门"}))
    accusation = await file_case(client, t.resident, accused_level="village")
    anonymous = await file_case(
        client, t.resident, anonymous=True, contact_name=None, contact_phone=None
    )
    report = await audit(session)
    assert report.findings == [], [f.render() for f in report.findings]
    await make_checkpoint(session)
    report = await audit(session)
    assert report.findings == [], [f.render() for f in report.findings]
    assert report.anchored >= 4 and "checkpoint #" in (report.checkpoint or "")
    assert report.lines()[-1] == "all event chains intact"
    for cid in (a, b, accusation["id"], anonymous["id"]):
        assert about(report, cid) == []


async def test_an_edited_event_is_named(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    cid = (await worked_case(client, t))["id"]
    events = await chain(session, cid)
    events[2].note = "改过的备注"
    await session.flush()
    (found,) = about(await audit(session), cid)
    assert (found.seq, found.part) == (3, "event") and "edited" in found.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("content", "被改写的反映内容"),
        ("status", "closed"),
        ("result", "早已解决"),
        ("unit_id", None),  # filled in below: another unit
        ("due_at", DEFAULT_NOW + timedelta(days=365)),
        ("anonymous", True),
        ("identity_commitment", "0" * 64),
    ],
)
async def test_an_edited_case_row_is_named_by_its_field(
    client: AsyncClient, t: Team, session: AsyncSession, field: str, value: object
) -> None:
    cid = (await worked_case(client, t))["id"]
    if field == "unit_id":
        row = await session.get(Complaint, cid)
        assert row is not None
        value = row.unit_id + 1
    await session.execute(update(Complaint).where(Complaint.id == cid).values({field: value}))
    found = about(await audit(session), cid)
    assert [(f.part, f.seq) for f in found] == [("row", 0)], [f.render() for f in found]
    assert f"field {field!r}" in found[0].reason and "edited" in found[0].reason


async def test_an_edited_contact_is_caught_by_its_commitment(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    """Plain on an ordinary case, sealed on an accusation: either edit is named
    without printing any contact value."""
    plain = (await worked_case(client, t))["id"]
    sealed = (await worked_case(client, t, accused_level="village"))["id"]
    await session.execute(
        update(Complaint).where(Complaint.id == plain).values(contact_phone="13000000000")
    )
    row = await session.get(Complaint, sealed)
    assert row is not None and row.identity_sealed is not None
    other = await session.get(Complaint, plain)
    assert other is not None
    await session.execute(
        update(Complaint)
        .where(Complaint.id == sealed)
        .values(identity_sealed=row.identity_sealed[:-8] + "AAAAAAAA")
    )
    report = await audit(session)
    (a,) = about(report, plain)
    assert "contact" in a.reason and "13000000000" not in a.reason and a.part == "row"
    (b,) = about(report, sealed)
    assert "sealed identity does not open" in b.reason


async def test_deleting_the_newest_event_is_caught_by_the_checkpoint(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    filed = await worked_case(client, t)
    cid = filed["id"]
    events = await chain(session, cid)
    await make_checkpoint(session)
    await session.execute(
        delete(ComplaintEvent).where(ComplaintEvent.id == events[-1].id)
    )  # the "resolved" event: the row still says resolved, so fix the row too
    await session.execute(
        update(Complaint)
        .where(Complaint.id == cid)
        .values(status="assigned", resolved_at=None, result=None)
    )
    (found,) = about(await audit(session), cid)
    assert found.seq == len(events) and "deleted" in found.reason
    assert f"now ends at #{len(events) - 1}" in found.reason
    assert filed["tracking_no"] in found.render()


async def test_a_dropped_case_is_named_by_its_tracking_number(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    filed = await worked_case(client, t)
    await make_checkpoint(session)
    await drop_case(session, filed["id"])
    (found,) = about(await audit(session), filed["id"])
    assert "case dropped" in found.reason and found.tracking_no == filed["tracking_no"]


async def test_a_consistent_rewrite_without_the_signing_key_is_caught(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    """Even with the chain key: the rewritten chain verifies by itself, the
    anchored head does not; re-anchoring needs the signing key; and an export
    kept elsewhere still names the case."""
    filed = await worked_case(client, t)
    cid = filed["id"]
    cp = await make_checkpoint(session)
    kept = exported.load(
        json.dumps(
            await exported.export(session, TRUSTED, everything=False, now=DEFAULT_NOW)
        ).encode()
    )
    events = await chain(session, cid)
    events[1].note = "从未发生过的处理"
    await rechain(session, events)
    (found,) = about(await audit(session), cid)
    assert "rewritten" in found.reason and found.seq == len(events)
    # The insider moves the anchor too, and recomputes the checkpoint's roots
    # and hash; only the signature cannot follow.
    await session.execute(
        update(AuditHead)
        .where(AuditHead.kind == "case", AuditHead.chain_id == cid)
        .values(head_hash=events[-1].hash)
    )
    assert about(await audit(session), cid) == []
    moved = about(await audit(session), f"checkpoint:{cp.seq}")
    assert [f.part for f in moved] == ["checkpoint"] and "bucket" in moved[0].reason
    roots, _ = await bucket_roots(session)
    cp.bucket_roots = [r.hex() for r in roots]
    cp.root = merkle.top(roots).hex()
    cp.hash = header_hash(header(cp))
    await session.flush()
    forged = about(await audit(session), f"checkpoint:{cp.seq}")
    assert [f.reason for f in forged] == ["signature is not valid"]
    named = about(await audit(session, exported=kept), cid)
    assert len(named) == 1 and "rewritten" in named[0].reason
    assert any(f.complaint_id == f"checkpoint:{cp.seq}" for f in (await audit(
        session, exported=kept)).findings)  # fmt: skip


async def test_reordered_events_are_named(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    cid = (await worked_case(client, t))["id"]
    await swap(session, cid, 3, 4)
    found = about(await audit(session), cid)
    assert found and (found[0].seq, found[0].part) == (3, "event")
    assert "previous-hash link" in found[0].reason


async def test_events_written_before_replay_data_are_not_reported(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    """A legacy case (format 1, no state in its events) verifies clean on what
    its events carry, and its row is still checked on those fields."""
    cid = (await worked_case(client, t))["id"]
    events = await chain(session, cid)
    for e in events:
        e.hash_version = LEGACY  # type: ignore[attr-defined]
        e.data = {k: v for k, v in e.data.items() if k not in ("state", "identity_commitment")}
    await rechain(session, events)
    report = await audit(session)
    assert about(report, cid) == []
    assert report.replayed_partly >= 1 and {"content", "item_code"} <= report.not_replayed
    await session.execute(update(Complaint).where(Complaint.id == cid).values(status="closed"))
    (found,) = about(await audit(session), cid)
    assert "field 'status'" in found.reason


async def test_a_checkpoint_removed_from_the_chain_is_named(
    client: AsyncClient, t: Team, session: AsyncSession
) -> None:
    await worked_case(client, t)
    first = await make_checkpoint(session)
    second = await make_checkpoint(session, DEFAULT_NOW + timedelta(hours=1))
    third = await make_checkpoint(session, DEFAULT_NOW + timedelta(hours=2))
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
    await session.execute(delete(AuditCheckpoint).where(AuditCheckpoint.id == second.id))
    found = about(await audit(session), f"checkpoint:{third.seq}")
    assert {f.reason for f in found} == {
        f"checkpoint #{second.seq} is missing",
        "does not link to the previous checkpoint",
    }
    assert (await session.execute(select(AuditCheckpoint.bucket_roots).where(
        AuditCheckpoint.id == first.id))).scalar_one() == []  # fmt: skip
