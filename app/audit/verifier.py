"""``ydt audit verify``: everything an auditor can check, each problem named.

For every case: its hash chain (an edited, removed or reordered event), its
row against the replay of its events (a field edited in the row), and its
head against the latest checkpoint (newest events deleted, the chain
rewritten). Then the anchored chains no longer in the database (a dropped
case), the same for every disclosure series, and the checkpoints themselves:
their chain, their signatures under a trusted key, and the anchored heads
against the signed root. With an exported checkpoint file the chains are
checked against the file's heads instead, so a database whose anchors were
rewritten too is still caught, and a deleted case the file lists is named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit import merkle, state
from app.audit import repository as repo
from app.audit.checkpoint import bucket_roots, header, header_hash, message
from app.audit.exported import Exported
from app.audit.signing import check
from app.complaints import identity
from app.complaints.events import compute_hash
from app.core.chain import GENESIS, first_break
from app.disclosures.events import event_hash
from app.models import AuditCheckpoint, Complaint, ComplaintEvent, Disclosure, DisclosureEvent

MAX_FINDINGS = 1000


@dataclass(frozen=True, slots=True)
class Break:
    complaint_id: str  # "disclosure:<series id>" for a series, "checkpoint:<n>" for one
    tracking_no: str
    seq: int
    reason: str
    part: str = "event"  # event | row | chain | checkpoint

    def render(self) -> str:
        where = f"event #{self.seq}" if self.part == "event" else self.part
        return f"BROKEN {self.tracking_no} ({self.complaint_id}) {where}: {self.reason}"


@dataclass
class AuditReport:
    cases: int = 0
    events: int = 0
    disclosure_series: int = 0
    findings: list[Break] = field(default_factory=list)
    problems: int = 0
    replayed: int = 0
    replayed_partly: int = 0
    not_replayed: set[str] = field(default_factory=set)
    checkpoint: str | None = None  # what the chains were checked against
    anchored: int = 0
    unanchored: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def first_break(self) -> Break | None:
        return self.findings[0] if self.findings else None

    def lines(self) -> list[str]:
        """The report as ``ydt audit verify`` prints it."""
        out = [
            f"checked {self.cases} cases, {self.disclosure_series} disclosure series, "
            f"{self.events} events"
        ]
        replay = f"replayed {self.replayed} cases' events against their rows"
        if self.replayed_partly:
            replay += (
                f"; {self.replayed_partly} written before replay data, checked on what their "
                f"events carry (not checked: {', '.join(sorted(self.not_replayed))})"
            )
        out.append(replay)
        if self.checkpoint is not None:
            out.append(
                f"chain heads checked against {self.checkpoint}: {self.anchored} anchored, "
                f"{self.unanchored} with events since (anchored by the next checkpoint)"
            )
        out += [f"note: {n}" for n in self.notes]
        out += [f.render() for f in self.findings]
        if self.problems > len(self.findings):
            out.append(f"... and {self.problems - len(self.findings)} more")
        out.append(
            f"{self.problems} problem(s) found" if self.problems else "all event chains intact"
        )
        return out

    def add(self, found: Break) -> None:
        self.problems += 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(found)


class _Anchors:
    """The heads chains are checked against: the latest checkpoint's
    (``audit_heads``) or an exported file's."""

    def __init__(self, number: int, file: Exported | None) -> None:
        self.number = number
        self.file = file
        self.seen: set[tuple[str, str]] = set()

    async def get(self, session: AsyncSession, kind: str, ids: list[str]) -> dict[str, repo.Anchor]:
        if self.file is None:
            return await repo.anchored(session, kind, ids)
        self.seen.update((kind, i) for i in ids)
        return {i: a for i in ids if (a := self.file.leaves.get((kind, i))) is not None}

    async def gone(self, session: AsyncSession, kind: str) -> list[tuple[str, repo.Anchor]]:
        if self.file is None:
            return await repo.anchored_without_chain(session, kind)
        return sorted(
            (i, a)
            for (k, i), a in self.file.leaves.items()
            if k == kind and (k, i) not in self.seen
        )


async def verify(
    session: AsyncSession,
    *,
    trusted: Mapping[str, str] | None = None,
    exported: Exported | None = None,
    batch: int = 500,
) -> AuditReport:
    """Check everything; ``trusted`` maps key ids to the public keys whose
    checkpoint signatures are believed (None: signatures are not checked and
    the report says so)."""
    report = AuditReport()
    await one_snapshot(session)
    async with repo.reader(session) as s:
        number = await _checkpoints(s, report, trusted)
        if exported is not None:
            number = await _against_file(s, report, exported)
        anchors = _Anchors(number, exported) if number else None
        await _cases(s, report, anchors, batch)
        await _series(s, report, anchors, batch)
    return report


async def one_snapshot(session: AsyncSession) -> None:
    """Begin ``session``'s transaction as one snapshot on PostgreSQL.

    A verification of a live system reads for minutes: the checkpoints, the
    anchored heads bucket by bucket, then every chain. Under read committed
    each statement saw its own moment, so a worker's checkpoint committed in
    between showed as heads "altered" or as events "deleted" that were not.
    (SQLite's transaction is one snapshot already.) A session already in a
    transaction, a caller's, or bound to a connection (whose own transaction
    may have begun already), is left as it is."""
    bind = session.bind
    if session.in_transaction() or not isinstance(bind, AsyncEngine):
        return
    if bind.dialect.name != "postgresql":
        return
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _anchor_check(
    report: AuditReport,
    anchors: _Anchors | None,
    anchor: repo.Anchor | None,
    chain: list[Any],
    who: tuple[str, str],
) -> None:
    if anchors is None:
        return
    if anchor is None:
        if chain:
            report.unanchored += 1
        return
    report.anchored += 1
    by_seq = {e.seq: e for e in chain}
    last = max(by_seq, default=0)
    at = by_seq.get(anchor.seq)
    cp = f"checkpoint #{anchors.number}"
    if at is None:
        report.add(
            Break(
                *who,
                anchor.seq,
                f"deleted: {cp} anchored this chain at event #{anchor.seq}, it now ends at #{last}",
            )
        )
    elif at.hash != anchor.head:
        report.add(
            Break(
                *who,
                anchor.seq,
                f"rewritten: event #{anchor.seq} is not the one {cp} anchored "
                f"(hash {at.hash[:12]}…, anchored {anchor.head[:12]}…)",
            )
        )
    elif last > anchor.seq:
        report.unanchored += 1  # newer events await the next checkpoint


async def _cases(
    s: AsyncSession, report: AuditReport, anchors: _Anchors | None, batch: int
) -> None:
    after = ""
    while True:
        page = list(
            (
                await s.execute(
                    select(Complaint)
                    .where(Complaint.id > after)
                    .order_by(Complaint.id)
                    .limit(batch)
                )
            ).scalars()
        )
        if not page:
            break
        after = page[-1].id
        ids = [c.id for c in page]
        chains: dict[str, list[ComplaintEvent]] = {cid: [] for cid in ids}
        for e in (
            await s.execute(
                select(ComplaintEvent)
                .where(ComplaintEvent.complaint_id.in_(ids))
                .order_by(ComplaintEvent.complaint_id, ComplaintEvent.seq)
            )
        ).scalars():
            chains[e.complaint_id].append(e)
        anchored = await anchors.get(s, repo.CASE, ids) if anchors else {}
        for c in page:
            chain, who = chains[c.id], (c.id, c.tracking_no)
            report.cases += 1
            report.events += len(chain)
            if not chain:
                report.add(Break(*who, 0, "case has no events", part="chain"))
            elif (found := first_break(chain, compute_hash)) is not None:
                report.add(Break(*who, *found))
            _anchor_check(report, anchors, anchored.get(c.id), chain, who)
            if chain:
                replayed = state.replay_case(chain)
                missing = replayed.unknown
                report.replayed += 1
                if missing:
                    report.replayed_partly += 1
                    report.not_replayed.update(missing)
                for m in state.case_mismatches(c, replayed):
                    report.add(Break(*who, 0, f"edited: {m.render()}", part="row"))
                if (problem := _contact(c, replayed)) is not None:
                    report.add(Break(*who, 0, problem, part="row"))
        s.expunge_all()
    if anchors is not None:
        for chain_id, anchor in await anchors.gone(s, repo.CASE):
            report.add(
                Break(
                    chain_id,
                    anchor.label or "?",
                    anchor.seq,
                    f"case dropped: checkpoint #{anchors.number} anchored it at event "
                    f"#{anchor.seq}, it is no longer in the database",
                    part="chain",
                )
            )


def _contact(c: Complaint, replayed: state.Replayed) -> str | None:
    """The filer's contact as the row keeps it (plain, or sealed) against the
    keyed commitment its filing event recorded; no value is ever printed."""
    committed = replayed.values.get(state.IDENTITY)
    if committed is None:
        return None  # filed before commitments existed
    try:
        now = identity.commitment(c.id, identity.of(c))
    except Exception:  # any way a tampered blob fails to open is a finding, not a crash
        return "edited: the sealed identity does not open (altered, or its key is not loaded)"
    if now != committed:
        return (
            "edited: the filer's contact (account, name or phone) no longer matches the "
            "commitment its filing recorded"
        )
    return None


async def _series(
    s: AsyncSession, report: AuditReport, anchors: _Anchors | None, batch: int
) -> None:
    """Disclosure events, one chain per series; each version's row against the
    replay of its series."""
    after = 0
    while True:
        ids = await repo.series_page(s, after, batch)
        if not ids:
            break
        after = ids[-1]
        chains: dict[int, list[DisclosureEvent]] = {sid: [] for sid in ids}
        for e in (
            await s.execute(
                select(DisclosureEvent)
                .where(DisclosureEvent.series_id.in_(ids))
                .order_by(DisclosureEvent.series_id, DisclosureEvent.seq)
            )
        ).scalars():
            chains[e.series_id].append(e)
        rows: dict[int, list[Disclosure]] = {sid: [] for sid in ids}
        for d in (
            await s.execute(
                select(Disclosure).where(Disclosure.series_id.in_(ids)).order_by(Disclosure.id)
            )
        ).scalars():
            rows[d.series_id or 0].append(d)
        anchored = await anchors.get(s, repo.DISCLOSURE, [str(i) for i in ids]) if anchors else {}
        for sid in ids:
            who = (f"disclosure:{sid}", "村务公开")
            report.disclosure_series += 1
            report.events += len(chains[sid])
            if (found := first_break(chains[sid], event_hash)) is not None:
                report.add(Break(*who, *found))
            _anchor_check(report, anchors, anchored.get(str(sid)), chains[sid], who)
            _replay_series(report, who, chains[sid], rows[sid])
        s.expunge_all()
    orphans = await s.execute(
        select(Disclosure.id, Disclosure.series_id).where(
            ~exists().where(DisclosureEvent.series_id == Disclosure.series_id)
        )
    )
    for d_id, series_id in orphans:
        report.add(
            Break(
                f"disclosure:{series_id}", "村务公开", 0, f"disclosure {d_id} has no events", "row"
            )
        )
    if anchors is not None:
        for chain_id, anchor in await anchors.gone(s, repo.DISCLOSURE):
            report.add(
                Break(
                    f"disclosure:{chain_id}",
                    "村务公开",
                    anchor.seq,
                    f"series dropped: checkpoint #{anchors.number} anchored it at event "
                    f"#{anchor.seq}, it is no longer in the database",
                    part="chain",
                )
            )


def _replay_series(
    report: AuditReport,
    who: tuple[str, str],
    chain: list[DisclosureEvent],
    versions: list[Disclosure],
) -> None:
    replayed = state.replay_series(chain)
    for seq, d_id in replayed.orphans:
        report.add(Break(*who, seq, f"event for disclosure {d_id}, which no event created"))
    present = {d.id for d in versions}
    for d in versions:
        expected = replayed.versions.get(d.id)
        if expected is None:
            report.add(Break(*who, 0, f"disclosure {d.id} was not created by an event", "row"))
            continue
        for m in state.disclosure_mismatches(d, expected):
            report.add(Break(*who, 0, f"edited: disclosure {d.id} {m.render()}", "row"))
    for d_id in sorted(set(replayed.versions) - present):
        report.add(Break(*who, 0, f"disclosure {d_id} was deleted", "row"))


async def _checkpoints(
    s: AsyncSession, report: AuditReport, trusted: Mapping[str, str] | None
) -> int:
    """The checkpoint chain and the anchored heads; the latest's number (0: none)."""
    cols = [c for c in AuditCheckpoint.__table__.c if c.name != "bucket_roots"]
    rows = (await s.execute(select(*cols).order_by(AuditCheckpoint.seq))).all()
    if not rows:
        report.notes.append(
            "no checkpoint yet: deleted newest events and dropped cases "
            "cannot be detected until one is made (ydt audit checkpoint)"
        )
        return 0
    prev, expected = GENESIS, 1
    if trusted is None:
        report.notes.append("checkpoint signatures not checked: no public key given")
    for cp in rows:
        who = (f"checkpoint:{cp.seq}", "audit checkpoint")
        if cp.seq != expected:
            report.add(Break(*who, cp.seq, f"checkpoint #{expected} is missing", "checkpoint"))
        if cp.prev_hash != prev:
            report.add(
                Break(*who, cp.seq, "does not link to the previous checkpoint", "checkpoint")
            )
        head = header(cp)
        if header_hash(head) != cp.hash:
            report.add(Break(*who, cp.seq, "edited: its hash does not match", "checkpoint"))
        if trusted is not None:
            public = trusted.get(cp.key_id)
            if public is None:
                report.add(
                    Break(*who, cp.seq, f"signed by an untrusted key {cp.key_id}", "checkpoint")
                )
            elif not check(public, message(head), cp.signature):
                report.add(Break(*who, cp.seq, "signature is not valid", "checkpoint"))
        prev, expected = cp.hash, cp.seq + 1
    latest = rows[-1]
    stored = (
        await s.execute(select(AuditCheckpoint.bucket_roots).where(AuditCheckpoint.id == latest.id))
    ).scalar_one()
    roots, counts = await bucket_roots(s)
    who = (f"checkpoint:{latest.seq}", "audit checkpoint")
    if [r.hex() for r in roots] != list(stored or []):
        bad = [b for b in range(merkle.BUCKETS) if b >= len(stored) or roots[b].hex() != stored[b]]
        report.add(
            Break(
                *who,
                latest.seq,
                f"anchored heads altered: bucket(s) {', '.join(map(str, bad[:10]))} no longer "
                "match the signed root (check against an exported checkpoint to name the chains)",
                "checkpoint",
            )
        )
    elif merkle.top(roots).hex() != latest.root:
        report.add(Break(*who, latest.seq, "bucket roots do not give its root", "checkpoint"))
    elif (counts[repo.CASE], counts[repo.DISCLOSURE]) != (latest.cases, latest.series):
        report.add(Break(*who, latest.seq, "anchored chain counts changed", "checkpoint"))
    report.checkpoint = (
        f"checkpoint #{latest.seq} of {state.moment(latest.created_at)} "
        f"({latest.cases} cases, {latest.series} disclosure series)"
    )
    return int(latest.seq)


async def _against_file(s: AsyncSession, report: AuditReport, file: Exported) -> int:
    """The exported checkpoints: signed by their key, consistent with their
    leaves, and the same in the database."""
    for problem in file.problems():
        report.add(
            Break(f"checkpoint:{file.latest_seq}", "exported checkpoint", 0, problem, "checkpoint")
        )
    for cp in file.checkpoints:
        row = (
            await s.execute(select(AuditCheckpoint.hash).where(AuditCheckpoint.seq == cp["seq"]))
        ).scalar_one_or_none()
        if row != cp["hash"]:
            what = "is missing from the database" if row is None else "differs in the database"
            report.add(
                Break(
                    f"checkpoint:{cp['seq']}",
                    "exported checkpoint",
                    cp["seq"],
                    f"checkpoint #{cp['seq']} of the file {what}",
                    "checkpoint",
                )
            )
    report.checkpoint = (
        f"exported checkpoint #{file.latest_seq} ({len(file.leaves)} chains, key {file.key_id})"
    )
    return file.latest_seq
