"""Checkpoints exported for the commission to keep outside this system.

The file holds the checkpoints (the latest, or all), the public key(s) that
signed them, and the latest checkpoint's leaves: every anchored chain with its
head. Kept elsewhere, it still names a case deleted from the database together
with its anchors, which the database alone can only report as "something in
bucket n changed" (``ydt audit verify --checkpoint FILE``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import merkle
from app.audit import repository as repo
from app.audit.checkpoint import header, header_hash, message
from app.audit.signing import check
from app.audit.state import moment
from app.core.errors import AppError
from app.models import AuditCheckpoint, AuditHead

FORMAT = "ydt-audit-checkpoints/1"
HEADER_KEYS = (
    "format",
    "seq",
    "period",
    "created_at",
    "prev_hash",
    "root",
    "cases",
    "series",
    "key_id",
)


class ExportError(AppError):
    code = "export_failed"


async def export(
    session: AsyncSession, trusted: Mapping[str, str], *, everything: bool, now: datetime
) -> dict[str, Any]:
    stmt = select(AuditCheckpoint).order_by(AuditCheckpoint.seq)
    rows = list((await session.execute(stmt)).scalars())
    if not rows:
        raise ExportError("no checkpoint to export yet: make one with `ydt audit checkpoint`")
    chosen = rows if everything else rows[-1:]
    keys: dict[str, str] = {}
    for cp in chosen:
        if cp.key_id not in trusted:
            raise ExportError(
                f"the public key of checkpoint #{cp.seq} (key {cp.key_id}) is not known here: "
                "run where the signing key is, or list it in YDT_AUDIT_PUBLIC_KEYS"
            )
        keys[cp.key_id] = trusted[cp.key_id]
    leaves = [
        [r.kind, r.chain_id, r.seq, r.head_hash, r.label]
        for r in await session.execute(
            select(
                AuditHead.kind,
                AuditHead.chain_id,
                AuditHead.seq,
                AuditHead.head_hash,
                AuditHead.label,
            ).order_by(AuditHead.kind, AuditHead.chain_id)
        )
    ]
    return {
        "format": FORMAT,
        "exported_at": moment(now),
        "public_keys": keys,
        "checkpoints": [
            {**header(cp), "hash": cp.hash, "signature": cp.signature} for cp in chosen
        ],
        "leaves": {"checkpoint": rows[-1].seq, "items": leaves},
    }


@dataclass
class Exported:
    public_keys: dict[str, str]
    checkpoints: list[dict[str, Any]]
    leaves: dict[tuple[str, str], repo.Anchor]

    @property
    def latest(self) -> dict[str, Any]:
        return self.checkpoints[-1]

    @property
    def latest_seq(self) -> int:
        return int(self.latest["seq"])

    @property
    def key_id(self) -> str:
        return str(self.latest["key_id"])

    def problems(self) -> list[str]:
        """The file's own consistency: hashes, links, signatures, and the leaves
        against the latest root."""
        found: list[str] = []
        prev: dict[str, Any] | None = None
        for cp in self.checkpoints:
            head = {k: cp[k] for k in HEADER_KEYS}
            if header_hash(head) != cp["hash"]:
                found.append(f"checkpoint #{cp['seq']} in the file: hash does not match")
            public = self.public_keys.get(str(cp["key_id"]))
            if public is None or not check(public, message(head), str(cp["signature"])):
                found.append(f"checkpoint #{cp['seq']} in the file: signature is not valid")
            if prev is not None and (cp["seq"], cp["prev_hash"]) != (prev["seq"] + 1, prev["hash"]):
                found.append(f"checkpoint #{cp['seq']} in the file: does not follow #{prev['seq']}")
            prev = cp
        buckets: dict[int, list[tuple[str, str, bytes]]] = defaultdict(list)
        for (kind, chain_id), a in self.leaves.items():
            leaf = merkle.leaf(kind, chain_id, a.seq, a.head)
            buckets[merkle.bucket_of(kind, chain_id)].append((kind, chain_id, leaf))
        roots = [merkle.root([x[2] for x in sorted(buckets[b])]) for b in range(merkle.BUCKETS)]
        if merkle.top(roots).hex() != self.latest["root"]:
            found.append(f"the file's chain heads do not give checkpoint #{self.latest_seq}'s root")
        return found


def load(raw: bytes) -> Exported:
    """Parse an export; ValueError names what is wrong with a file that is not one."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not an exported checkpoint file (format {FORMAT})")
    try:
        keys = {str(k): str(v) for k, v in dict(doc["public_keys"]).items()}
        checkpoints = [dict(cp) for cp in doc["checkpoints"]]
        for cp in checkpoints:
            for k in (*HEADER_KEYS, "hash", "signature"):
                if k not in cp:
                    raise ValueError(f"a checkpoint lacks {k!r}")
        if not checkpoints:
            raise ValueError("no checkpoint in the file")
        if int(doc["leaves"]["checkpoint"]) != int(checkpoints[-1]["seq"]):
            raise ValueError("the leaves are not the latest checkpoint's")
        leaves: dict[tuple[str, str], repo.Anchor] = {}
        for item in doc["leaves"]["items"]:
            kind, chain_id, seq, head, label = item
            leaves[(str(kind), str(chain_id))] = repo.Anchor(int(seq), str(head), label)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed checkpoint file: {exc}") from exc
    return Exported(keys, checkpoints, leaves)
