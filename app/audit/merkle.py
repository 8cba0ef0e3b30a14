"""The Merkle tree over chain heads (RFC 9162 tree hashing, pure).

Leaves are ``H(0x00 ‖ [kind, id, seq, head hash])``, interior nodes
``H(0x01 ‖ left ‖ right)``, so a leaf can never pass for a node. Leaves fall
into ``BUCKETS`` fixed buckets by a hash of their chain; each bucket is a tree
of its leaves in (kind, id) order, and the root is the tree of the bucket
roots. An inclusion proof is then a path inside one bucket plus a path among
the buckets: the dossier can prove a case's head is covered by a signed
checkpoint by reading a few thousand heads, not all of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

BUCKETS = 256
EMPTY = hashlib.sha256(b"").digest()


def leaf(kind: str, chain_id: str, seq: int, head: str) -> bytes:
    payload = json.dumps([kind, chain_id, seq, head], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(b"\x00" + payload.encode()).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def bucket_of(kind: str, chain_id: str) -> int:
    return hashlib.sha256(f"{kind}:{chain_id}".encode()).digest()[0] % BUCKETS


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return EMPTY
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node(root(leaves[:k]), root(leaves[k:]))


def path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index``: sibling hashes, bottom up."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _split(n)
    if index < k:
        return [*path(index, leaves[:k]), root(leaves[k:])]
    return [*path(index - k, leaves[k:]), root(leaves[:k])]


def root_from_path(index: int, size: int, start: bytes, siblings: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root a leaf and its path lead to, or None if the
    path cannot belong to a tree of ``size`` leaves."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, start
    for p in siblings:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def top(bucket_roots: Sequence[bytes]) -> bytes:
    return root(bucket_roots)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """That (kind, chain_id, seq, head_hash) is a leaf under a checkpoint's root."""

    kind: str
    chain_id: str
    seq: int
    head_hash: str
    bucket: int
    index: int  # position within the bucket
    size: int  # leaves in the bucket
    bucket_path: list[str]
    top_path: list[str]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def root(self) -> str | None:
        """The root this proof leads to (compare with the checkpoint's)."""
        start = leaf(self.kind, self.chain_id, self.seq, self.head_hash)
        try:
            inner = root_from_path(
                self.index, self.size, start, [bytes.fromhex(h) for h in self.bucket_path]
            )
            if inner is None:
                return None
            outer = root_from_path(
                self.bucket, BUCKETS, inner, [bytes.fromhex(h) for h in self.top_path]
            )
        except ValueError:
            return None
        return None if outer is None else outer.hex()
