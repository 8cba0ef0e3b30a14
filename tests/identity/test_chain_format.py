"""Format 2 chain entries: keyed links over commitments, never identities;
format 1 entries still verify as they were written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.complaints import events
from app.core import chain, keys
from app.core.chain import first_break
from app.models import Complaint, ComplaintEvent

AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
RESIDENT = 41
CADRE = 7


def case(*, anonymous: bool = False, accusation: bool = False) -> Complaint:
    return Complaint(id="c" * 32, anonymous=anonymous, accusation=accusation)


def history(c: Complaint) -> list[ComplaintEvent]:
    filed = events.build(
        c, None, kind="filed", public=True, actor_kind="citizen", actor_id=RESIDENT, at=AT
    )
    accepted = events.build(
        c,
        filed,
        kind="accepted",
        public=True,
        actor_kind="staff",
        actor_id=CADRE,
        at=AT + timedelta(hours=1),
    )
    supplemented = events.build(
        c,
        accepted,
        kind="supplemented",
        public=True,
        actor_kind="citizen",
        actor_id=RESIDENT,
        at=AT + timedelta(hours=2),
        note="补充",
    )
    return [filed, accepted, supplemented]


def test_a_protected_case_stores_no_resident_and_unlinkable_commitments() -> None:
    chain_ = history(case(accusation=True))
    filed, accepted, supplemented = chain_
    assert all(e.hash_version == chain.CURRENT for e in chain_)
    assert filed.actor_id is None and supplemented.actor_id is None
    assert accepted.actor_id == CADRE  # staff are no secret
    # the same resident, two events: nothing in common to link them by
    assert filed.actor_commitment != supplemented.actor_commitment
    assert RESIDENT not in events.fields(filed).values()  # what the hash covers
    assert "actor_id" not in events.fields(filed)
    assert first_break(chain_, events.compute_hash) is None


def test_an_ordinary_case_keeps_the_residents_id_beside_its_commitment() -> None:
    filed = history(case())[0]
    assert filed.actor_id == RESIDENT and filed.actor_commitment == events.actor_commitment(
        filed.complaint_id, 1, "citizen", RESIDENT
    )


def test_without_the_chain_key_a_consistent_rewrite_does_not_verify() -> None:
    chain_ = history(case(anonymous=True))
    forger = keys.Keyring.build(
        keks={"k": b"f" * 40},
        active="k",
        chain=b"forged-chain-key".ljust(40, b"!"),
        index=b"i" * 40,
    )
    chain_[2].note = "改过的补充"
    prev = chain.GENESIS
    for e in chain_:  # recompute every link, as an insider with the rows would
        e.prev_hash = prev
        e.hash = events.compute_hash(prev, e, forger)
        prev = e.hash
    assert first_break(chain_, lambda p, e: events.compute_hash(p, e, forger)) is None
    assert first_break(chain_, events.compute_hash) == (
        1,
        "content does not match its hash (edited)",
    )


def test_a_keyed_entry_cannot_pass_as_a_legacy_one() -> None:
    chain_ = history(case())
    for e in chain_:
        e.hash_version = chain.LEGACY  # the "downgrade" an insider might try
    found = first_break(chain_, events.compute_hash)
    assert found is not None and found[0] == 1


def test_legacy_entries_verify_as_written() -> None:
    legacy = ComplaintEvent(
        complaint_id="d" * 32,
        seq=1,
        kind="filed",
        public=True,
        actor_kind="citizen",
        actor_id=RESIDENT,
        from_status=None,
        to_status="submitted",
        note="",
        data={},
        created_at=AT,
        prev_hash=chain.GENESIS,
        hash_version=chain.LEGACY,
    )
    legacy.hash = chain.link(chain.GENESIS, events.legacy_fields(legacy))
    assert first_break([legacy], events.compute_hash) is None
    assert events.compute_hash(chain.GENESIS, legacy) == legacy.hash
