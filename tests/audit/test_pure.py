"""The pure parts of the audit: Merkle proofs, signatures, and the replay's
rules for events written before replay data existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.audit import merkle, state
from app.audit.checkpoint import header, header_hash, message, period_key
from app.audit.signing import check, load_signer, trusted_keys
from app.core.config import ConfigurationError
from app.models import Complaint, ComplaintEvent
from tests.conftest import make_settings

T0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 31])
def test_every_leaf_proves_its_way_to_the_root_and_nothing_else_does(size: int) -> None:
    leaves = [merkle.leaf("case", f"c{i}", i + 1, f"{i:064x}") for i in range(size)]
    root = merkle.root(leaves)
    for i, lf in enumerate(leaves):
        siblings = merkle.path(i, leaves)
        assert merkle.root_from_path(i, size, lf, siblings) == root
        other = merkle.leaf("case", f"c{i}", i + 2, f"{i:064x}")  # a later seq
        assert merkle.root_from_path(i, size, other, siblings) != root
        if size > 1:  # the right leaf at the wrong place
            assert merkle.root_from_path((i + 1) % size, size, lf, siblings) != root


def test_a_leaf_cannot_pass_for_a_node() -> None:
    a, b = merkle.leaf("case", "a", 1, "0" * 64), merkle.leaf("case", "b", 1, "1" * 64)
    assert merkle.root([a, b]) == merkle.node(a, b) != merkle.leaf("case", "a", 1, "1" * 64)


def test_a_proof_object_checks_the_bucket_and_the_top() -> None:
    members = sorted(("case", f"id{i}") for i in range(40))
    buckets: dict[int, list[tuple[str, str]]] = {}
    for kind, cid in members:
        buckets.setdefault(merkle.bucket_of(kind, cid), []).append((kind, cid))
    roots = [
        merkle.root([merkle.leaf(k, c, 3, "ab" * 32) for k, c in sorted(buckets.get(b, []))])
        for b in range(merkle.BUCKETS)
    ]
    top = merkle.top(roots).hex()
    kind, cid = members[7]
    b = merkle.bucket_of(kind, cid)
    group = sorted(buckets[b])
    leaves = [merkle.leaf(k, c, 3, "ab" * 32) for k, c in group]
    i = group.index((kind, cid))
    proof = merkle.InclusionProof(
        kind=kind,
        chain_id=cid,
        seq=3,
        head_hash="ab" * 32,
        bucket=b,
        index=i,
        size=len(leaves),
        bucket_path=[h.hex() for h in merkle.path(i, leaves)],
        top_path=[h.hex() for h in merkle.path(b, roots)],
    )
    assert proof.root() == top
    forged = merkle.InclusionProof(**{**proof.as_dict(), "head_hash": "cd" * 32})  # type: ignore[arg-type]
    assert forged.root() != top


def test_signatures_check_only_with_the_signing_key() -> None:
    signer = load_signer(make_settings())
    other = load_signer(make_settings(audit_signing_key="7a" * 32))
    msg = b"checkpoint"
    sig = signer.sign(msg)
    assert check(signer.public_hex, msg, sig)
    assert not check(other.public_hex, msg, sig)
    assert not check(signer.public_hex, msg + b"!", sig)
    assert not check(signer.public_hex, msg, "00" * 64)
    assert trusted_keys(make_settings()) == {signer.key_id: signer.public_hex}
    both = trusted_keys(make_settings(audit_public_keys=f"{other.public_hex}, "))
    assert set(both) == {signer.key_id, other.key_id}


def test_no_key_outside_the_embedded_default_is_refused(tmp_path: Any) -> None:
    settings = make_settings(
        audit_signing_key=None,
        key_dir=tmp_path,
        database_url="postgresql+asyncpg://postgres@127.0.0.1/none",
    )
    with pytest.raises(ConfigurationError, match="YDT_AUDIT_SIGNING_KEY is not set"):
        load_signer(settings)
    assert not (tmp_path / "audit-signing.pem").exists()
    with pytest.raises(ConfigurationError, match="not an Ed25519"):
        load_signer(make_settings(audit_signing_key="not a key"))


def test_the_embedded_default_generates_its_key_once(tmp_path: Any) -> None:
    settings = make_settings(audit_signing_key=None, key_dir=tmp_path / "keys")
    first = load_signer(settings)
    assert (tmp_path / "keys" / "audit-signing.pem").stat().st_mode & 0o077 == 0
    assert load_signer(settings).key_id == first.key_id


def test_a_checkpoint_header_covers_every_field() -> None:
    class Cp:
        format, seq, period, created_at = 1, 4, "periodic:60:2026-11-24T01:00Z", T0
        prev_hash, root, cases, series, key_id = "a" * 64, "b" * 64, 10, 2, "k" * 32

    base = header(Cp)
    for name, value in base.items():
        changed = {**base, name: "x" if not isinstance(value, int) else value + 1}
        assert header_hash(changed) != header_hash(base)
        assert message(changed) != message(base)


def test_periods_are_aligned_so_every_worker_names_the_same_one() -> None:
    a = period_key(T0.replace(minute=1), 60)
    assert a == period_key(T0.replace(minute=59), 60) == "periodic:60:2026-11-24T01:00Z"
    assert period_key(T0 + timedelta(hours=1), 60) != a
    assert period_key(T0, 15) != period_key(T0, 60)


# --- replay -------------------------------------------------------------------


def event(seq: int, kind: str, *, to: str | None = None, note: str = "", **data: Any) -> Any:
    return ComplaintEvent(
        complaint_id="c" * 32,
        seq=seq,
        kind=kind,
        public=True,
        actor_kind="staff",
        actor_id=1,
        from_status=None,
        to_status=to,
        note=note,
        data=data,
        created_at=T0 + timedelta(minutes=seq),
        prev_hash="",
        hash="",
    )


def row(**kw: Any) -> Complaint:
    values: dict[str, Any] = dict.fromkeys(state.CASE_FIELDS)
    values.update(content="内容", reopen_count=0, priority_flags=[], routing_trace=[])
    values.update(kw)
    return Complaint(**values)


LEGACY = [
    event(1, "filed", to="submitted", unit_id=5, channel="online", received_at=T0.isoformat()),
    event(2, "routed", unit_id=5, cadre_id=None, trace=["事项 → 单位"]),
    event(3, "accepted", to="accepted"),
    event(4, "escalated", to="escalated", from_unit_id=5, to_unit_id=9),
    event(5, "accepted", to="accepted"),
    event(6, "resolved", to="resolved", note="已整改"),
    event(7, "reopened", to="reopened"),
    event(8, "extended", days=3, new_due_at=(T0 + timedelta(days=9)).isoformat()),
]


def legacy_row(**kw: Any) -> Complaint:
    return row(
        status="reopened",
        unit_id=9,
        cadre_id=None,
        channel="online",
        received_at=T0,
        routing_trace=["事项 → 单位"],
        accepted_at=T0 + timedelta(minutes=5),
        reopen_count=1,
        due_at=T0 + timedelta(days=9),
        **kw,
    )


def test_legacy_events_are_replayed_on_what_they_carry_only() -> None:
    replayed = state.replay_case(LEGACY)
    assert state.case_mismatches(legacy_row(content="任何内容", item_code="0999"), replayed) == []
    assert {"content", "item_code", "yellow_at", "priority_flags"} <= set(replayed.unknown)
    assert "status" not in replayed.unknown and "unit_id" not in replayed.unknown


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "closed"),
        ("unit_id", 5),
        ("reopen_count", 0),
        ("result", "已整改"),
        ("due_at", T0 + timedelta(days=30)),
        ("accepted_at", T0),
        ("routing_trace", ["别的单位"]),
    ],
)
def test_a_legacy_row_edited_is_named_by_its_field(field: str, value: Any) -> None:
    edited = legacy_row()
    setattr(edited, field, value)
    found = state.case_mismatches(edited, state.replay_case(LEGACY))
    assert [m.field for m in found] == [field]


def test_state_carried_by_events_wins_and_covers_every_field() -> None:
    filed_row = row(status="submitted", unit_id=5, content="原始内容", due_at=T0)
    filed = event(1, "filed", to="submitted", state=state.snapshot(filed_row))
    later_row = row(status="submitted", unit_id=5, content="原始内容", due_at=T0, cadre_id=7)
    later = event(2, "assigned", state=state.changed(later_row, ["cadre_id", "version"]))
    replayed = state.replay_case([filed, later])
    assert replayed.unknown == []
    assert state.case_mismatches(later_row, replayed) == []
    later_row.content = "被改过的内容"
    (m,) = state.case_mismatches(later_row, replayed)
    assert m.field == "content" and "sha256:" in m.render()


def test_the_identity_commitment_of_the_filing_is_checked() -> None:
    filed = event(1, "filed", to="submitted", identity_commitment="f" * 64)
    replayed = state.replay_case([filed])
    r = row(status="submitted")
    r.identity_commitment = "f" * 64
    assert state.case_mismatches(r, replayed) == []
    r.identity_commitment = "0" * 64
    assert [m.field for m in state.case_mismatches(r, replayed)] == ["identity_commitment"]
