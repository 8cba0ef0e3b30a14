"""Hash chains for append-only logs (case events, disclosure events).

Each entry stores its predecessor's hash and a digest of (prev ‖ canonical
JSON of its own fields), so editing, removing or reordering any entry is
detected by walking the chain again (``ydt audit verify``).

Two formats, told apart by each entry's ``hash_version``:

* 1 (legacy): plain sha256. Anyone with the rows can recompute it, so a
  consistent rewrite of a whole chain goes unnoticed, and a small identity
  field hashed in can be recovered by trying candidates. Kept only to verify
  entries written before format 2; never written again, never rewritten.
* 2: HMAC-SHA256 under the chain key (kept outside the database, see
  ``app/core/keys.py``), over fields that carry keyed commitments instead of
  identities, and the version itself, so a v2 entry cannot pass as v1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import keys
from app.core.crypto import keyed_link
from app.core.errors import Conflict

GENESIS = "0" * 64
LEGACY = 1
CURRENT = 2


class ChainConflict(Conflict):
    """Another writer appended to the same chain first (unique seq)."""

    code = "stale_version"


async def add_entry(session: AsyncSession, entry: Any) -> None:
    """Insert a chain entry; losing the race for its seq is a 409, not a 500.

    Pending work is flushed first, so only the entry's own insert can raise
    here. The request's transaction is rolled back by its owner.
    """
    await session.flush()
    session.add(entry)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ChainConflict("记录刚刚被他人更新，请刷新后重试") from exc


class Linked(Protocol):
    seq: int
    prev_hash: str
    hash: str


def moment(at: datetime) -> str:
    """Timestamps hash the same on every backend and time zone."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def link(prev_hash: str, fields: dict[str, Any]) -> str:
    """Format 1 (legacy): unkeyed; only for verifying entries written before format 2."""
    return hashlib.sha256((prev_hash + canonical(fields)).encode()).hexdigest()


def keyed(prev_hash: str, fields: dict[str, Any], keyring: keys.Keyring | None = None) -> str:
    """Format 2: the link can only be computed, or checked, with the chain key."""
    return keyed_link(keyring or keys.current(), prev_hash + canonical(fields))


def version_of(entry: object) -> int:
    """An entry's format; one built in memory without a version counts as legacy,
    like a row the migration found (the column's default)."""
    return int(getattr(entry, "hash_version", None) or LEGACY)


T = TypeVar("T", bound=Linked)


def first_break(chain: Sequence[T], digest: Callable[[str, T], str]) -> tuple[int, str] | None:
    """(seq, reason) of the first entry that does not follow from the one before."""
    prev = GENESIS
    for expected, entry in enumerate(chain, start=1):
        if entry.seq != expected:
            return expected, f"event #{expected} is missing"
        if entry.prev_hash != prev:
            return entry.seq, "previous-hash link does not match"
        if digest(prev, entry) != entry.hash:
            return entry.seq, "content does not match its hash (edited)"
        prev = entry.hash
    return None
