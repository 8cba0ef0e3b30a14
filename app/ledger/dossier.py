"""One case, one file (一案一卷): a printable PDF, and a zip of the PDF beside
the machine-readable files.

What a reader gets is the case file as their role may see it
(``queue.case_file(read_via="dossier")``): a protected filer shown to this
reader is a recorded read, exactly as on the case page, and everything else
the PDF prints (the timeline, the actors) comes from that same masked view.

Every media file is checked against its recorded sha256 as it is read
(``evidence.check``). Only bytes that match go into the zip; a mismatch or a
missing object is named in the PDF and in ``media_manifest.json`` instead of
being packed as if it were the evidence. Thumbnails, the PDF and the zip are
CPU work and run in a worker thread; the zip is written to disk member by
member and sent from there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import checkpoint as audit_checkpoint
from app.console import lookups
from app.console.forms import SLOT_LABELS
from app.core.config import Settings
from app.core.storage import MediaStore
from app.feedback import service as feedback_service
from app.ledger import evidence
from app.ledger.evidence import MediaEntry
from app.ledger.service import scratch_file
from app.models import (
    AuditCheckpoint,
    Callback,
    ComplaintEvent,
    Department,
    Media,
    Rating,
    Region,
    StaffUser,
    SupervisionOrder,
)
from app.moderation import checks as moderation_checks
from app.qrcodes import service as qrcodes_service
from app.workflow import queue
from app.workflow.schemas import CaseFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verification:
    """Where the case's chain stands: its newest event, and the head the
    latest signed checkpoint anchors (possibly older), with the proof."""

    complaint_id: str
    tracking_no: str
    head_seq: int
    head_hash: str
    checkpoint: dict[str, Any] | None
    anchored_seq: int | None
    anchored_hash: str | None
    proof: dict[str, Any] | None

    def qr_payload(self) -> str:
        """Compact, so the code stays scannable on paper; the proof is in the zip."""
        cp = self.checkpoint
        return json.dumps(
            {
                "t": "ydt-dossier/1",
                "no": self.tracking_no,
                "id": self.complaint_id,
                "head": [self.head_seq, self.head_hash],
                "cp": [cp["seq"], cp["root"]] if cp else None,
                "anchored": [self.anchored_seq, self.anchored_hash] if cp else None,
            },
            separators=(",", ":"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "complaint_id": self.complaint_id,
            "tracking_no": self.tracking_no,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "checkpoint": self.checkpoint,
            "anchored": {"seq": self.anchored_seq, "hash": self.anchored_hash}
            if self.checkpoint
            else None,
            "proof": self.proof,
        }


@dataclass(frozen=True, slots=True)
class SignoffSlot:
    slot: str
    label: str
    signer: str | None
    at: datetime | None


@dataclass(slots=True)
class Dossier:
    """Everything both files print, gathered once, in plain values (the
    thread that renders never touches the database session)."""

    case: CaseFile
    tz: ZoneInfo
    generated_at: datetime
    reader: str
    names: dict[int, str]
    department: str
    handler_department: str | None
    events: list[dict[str, Any]]  # events.jsonl: the rows the case file shows
    ratings: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    signoff: list[SignoffSlot]
    verification: Verification
    font: Path | None = None  # the CJK TrueType font to embed
    media: list[MediaEntry] = field(default_factory=list)
    media_withheld: int = 0

    def actor(self, kind: str, actor_id: int | None) -> str:
        """Who acted, as a reader may know it: a resident is "反映人", never an id."""
        if kind == "staff":
            return self.names.get(actor_id or 0, f"工作人员 #{actor_id}")
        if kind == "citizen":
            return "反映人"
        return "系统"


def _event_record(e: ComplaintEvent, *, hide_citizen: bool) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "kind": e.kind,
        "public": e.public,
        "actor_kind": e.actor_kind,
        "actor_id": None if (hide_citizen and e.actor_kind == "citizen") else e.actor_id,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "note": e.note,
        "data": e.data,
        "created_at": e.created_at.isoformat(),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def _signoff(
    events: Sequence[ComplaintEvent], names: dict[int, str], settings: Settings
) -> list[SignoffSlot]:
    """This round's slots (``queue.round_signatures`` decides the round), with
    who signed each and when; an unsigned slot is printed empty."""
    signed = dict(queue.round_signatures(events))
    when = {str(e.data.get("slot")): e.created_at for e in events if e.kind == "signed"}
    return [
        SignoffSlot(
            slot=s,
            label=SLOT_LABELS.get(s, s),
            signer=names.get(signed[s] or 0, "—") if s in signed else None,
            at=when.get(s) if s in signed else None,
        )
        for s in settings.signoff_slots
    ]


async def _verification(
    session: AsyncSession, case: CaseFile, head: ComplaintEvent
) -> Verification:
    found = await audit_checkpoint.inclusion(session, "case", case.id)
    cp = await session.get(AuditCheckpoint, found.checkpoint_id) if found else None
    if found is None or cp is None:
        return Verification(case.id, case.tracking_no, head.seq, head.hash, None, None, None, None)
    return Verification(
        complaint_id=case.id,
        tracking_no=case.tracking_no,
        head_seq=head.seq,
        head_hash=head.hash,
        checkpoint={
            "id": cp.id,
            "seq": cp.seq,
            "created_at": cp.created_at.isoformat(),
            "root": cp.root,
            "hash": cp.hash,
            "key_id": cp.key_id,
            "signature": cp.signature,
        },
        anchored_seq=found.proof.seq,
        anchored_hash=found.head_hash,
        proof=found.proof.as_dict(),
    )


# A writer's session of its own for each call (``db.write_session`` bound to
# the request): the dossier holds one only while it reads the database.
Writer = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def collect(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str,
    *,
    now: datetime,
    settings: Settings,
) -> tuple[Dossier, list[Media]]:
    """Gather the dossier from the database (404 outside the reader's scope,
    via the case file, which records the read), and the media to check."""
    case = await queue.case_file(
        session, user, complaint_id, now=now, settings=settings, read_via="dossier"
    )
    rows = await queue.all_events(session, case.id)  # after the read was recorded
    shown = {e.seq for e in case.events}
    ratings = (
        await session.execute(
            select(Rating).where(Rating.complaint_id == case.id).order_by(Rating.round)
        )
    ).scalars()
    callbacks = [
        cb
        for cb in (
            await session.execute(select(Callback).where(Callback.complaint_id == case.id))
        ).scalars()
        # a pending sample is the commission's working paper, hidden from the unit
        if cb.status == "done" or await feedback_service.may_see_draw(session, user, cb.draw_id)
    ]
    orders = list(
        (
            await session.execute(
                select(SupervisionOrder)
                .where(SupervisionOrder.complaint_id == case.id)
                .order_by(SupervisionOrder.id)
            )
        ).scalars()
    )
    media = list(
        (
            await session.execute(
                select(Media)
                .where(Media.attached_to == f"complaint:{case.id}")
                .order_by(Media.attached_at, Media.id)
            )
        ).scalars()
    )
    names = await lookups.staff_names(
        session,
        [
            *(e.actor_id for e in rows if e.actor_kind == "staff"),
            case.cadre_id,
            user.id,
            *(cb.staff_id for cb in callbacks),
            *(o.issued_by for o in orders),
        ],
    )
    dept = await session.get(Department, case.department_code)
    handler = None
    if case.handler_department_code:
        hd = await session.get(Department, case.handler_department_code)
        hr = await session.get(Region, case.handler_region_code or "")
        handler = f"{hr.name if hr else ''}{hd.name if hd else case.handler_department_code}"
    dossier = Dossier(
        case=case,
        tz=ZoneInfo(settings.timezone),
        generated_at=now,
        reader=names.get(user.id, user.username),
        names=names,
        department=dept.name if dept else case.department_code,
        handler_department=handler,
        events=[
            _event_record(e, hide_citizen=not case.reporter.visible)
            for e in rows
            if e.seq in shown  # the case file's choice (reads of identity: commission)
        ],
        ratings=[
            {
                "round": r.round,
                "score": r.score,
                "satisfaction": r.satisfaction,
                "comment": r.comment,
                "reopened": r.reopened,
                "created_at": r.created_at,
            }
            for r in ratings
        ],
        callbacks=[
            {
                "method": cb.method,
                "reached": cb.reached,
                "resolved": cb.resolved,
                "satisfaction": cb.satisfaction,
                "fake_closure": cb.fake_closure,
                "note": cb.note,
                "staff": names.get(cb.staff_id) if cb.staff_id else None,
                "done_at": cb.done_at,
            }
            for cb in callbacks
        ],
        orders=[
            {
                "kind": o.kind,
                "reason": o.reason,
                "issued_by": names.get(o.issued_by) if o.issued_by else None,
                "deadline_at": o.deadline_at,
                "created_at": o.created_at,
            }
            for o in orders
        ],
        signoff=_signoff(rows, names, settings),
        verification=await _verification(session, case, rows[-1]),
        font=qrcodes_service.find_cjk_font(settings.qr_font),
    )
    return dossier, media


async def check_media(
    dossier: Dossier,
    media: list[Media],
    store: MediaStore,
    workdir: Path,
    *,
    keep: bool,
    now: datetime,
) -> list[str]:
    """Check each item against its sha256 (reading every byte: minutes for a
    case with videos), holding no session: on SQLite a writer's session would
    hold the write lock, and every resident's filing, for as long. The ids of
    those found changed for the first time, for ``record_failures``."""
    failed = []
    for m in media:
        if not moderation_checks.staff_may_see(m):
            dossier.media_withheld += 1  # still being checked by WeChat, or found risky
            continue
        first = m.integrity_failed_at is None
        dossier.media.append(await evidence.check(store, m, workdir, keep=keep, now=now))
        if first and m.integrity_failed_at is not None:
            failed.append(m.id)
    return failed


async def record_failures(session: AsyncSession, media_ids: list[str], now: datetime) -> None:
    """The time the bytes were first found changed (one found earlier is kept)."""
    await session.execute(
        update(Media)
        .where(Media.id.in_(media_ids))
        .values(integrity_failed_at=func.coalesce(Media.integrity_failed_at, now))
        .execution_options(synchronize_session=False)
    )


async def _gather(
    writer: Writer,
    user: StaffUser,
    complaint_id: str,
    store: MediaStore,
    workdir: Path,
    *,
    keep_media: bool,
    now: datetime,
    settings: Settings,
) -> Dossier:
    async with writer() as session:
        dossier, media = await collect(session, user, complaint_id, now=now, settings=settings)
    failed = await check_media(dossier, media, store, workdir, keep=keep_media, now=now)
    if failed:
        async with writer() as session:
            await record_failures(session, failed, now)
    return dossier


def _json(value: Any) -> str:
    return json.dumps(
        value,
        ensure_ascii=False,
        indent=2,
        default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
    )


def _pack(d: Dossier, pdf: Path, out: Path) -> None:
    """The zip, written to disk member by member: the JSON files compressed,
    media stored as they are (already compressed formats)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(pdf, f"一案一卷-{d.case.tracking_no}.pdf")
        zf.writestr("case.json", d.case.model_dump_json(indent=2))
        zf.writestr(
            "events.jsonl",
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in d.events),
        )
        zf.writestr("ratings.json", _json(d.ratings))
        zf.writestr("callbacks.json", _json(d.callbacks))
        zf.writestr("supervision_orders.json", _json(d.orders))
        zf.writestr("media_manifest.json", _json([m.manifest() for m in d.media]))
        if d.media_withheld:
            zf.writestr(
                "media_withheld.json", _json({"withheld_by_content_check": d.media_withheld})
            )
        zf.writestr("verification.json", _json(d.verification.as_dict()))
        for m in d.media:
            if m.scratch is not None and m.arcname is not None:
                info = zipfile.ZipInfo(m.arcname, date_time=d.generated_at.timetuple()[:6])
                info.compress_type = zipfile.ZIP_STORED
                with m.scratch.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                m.scratch.unlink()


def _render(d: Dossier, out: Path) -> None:
    from app.ledger import pdf  # reportlab loads on the first dossier, not at start-up

    pdf.render(d, out)


async def write_pdf(
    writer: Writer,
    user: StaffUser,
    complaint_id: str,
    store: MediaStore,
    *,
    now: datetime,
    settings: Settings,
) -> tuple[Path, str]:
    """The printable dossier alone."""
    out = scratch_file("dossier-", ".pdf")
    try:
        with tempfile.TemporaryDirectory(prefix="dossier-") as work:
            d = await _gather(
                writer, user, complaint_id, store, Path(work),
                keep_media=False, now=now, settings=settings,
            )  # fmt: skip
            await asyncio.to_thread(_render, d, out)
        return out, d.case.tracking_no
    except BaseException:  # nothing half-written is left behind
        out.unlink(missing_ok=True)
        raise


async def write_dossier(
    writer: Writer,
    user: StaffUser,
    complaint_id: str,
    store: MediaStore,
    *,
    now: datetime,
    settings: Settings,
) -> tuple[Path, str]:
    """The zip: the PDF, the case, its event log with hashes, ratings,
    callbacks, supervision orders, the checked media and their manifest, and
    the verification data (chain head, checkpoint, Merkle proof)."""
    out = scratch_file("dossier-", ".zip")
    try:
        with tempfile.TemporaryDirectory(prefix="dossier-") as work:
            d = await _gather(
                writer, user, complaint_id, store, Path(work),
                keep_media=True, now=now, settings=settings,
            )  # fmt: skip
            pdf_path = Path(work) / "dossier.pdf"
            await asyncio.to_thread(_render, d, pdf_path)
            await asyncio.to_thread(_pack, d, pdf_path, out)
        return out, d.case.tracking_no
    except BaseException:
        out.unlink(missing_ok=True)
        raise
