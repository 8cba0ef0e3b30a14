"""Signed checkpoints that anchor every hash chain's head (``app/audit/``).

A chain proves its own events were not edited in place, but not that its
newest events or the whole chain still exist, nor that nobody recomputed it.
A checkpoint fixes, at one moment, the head of every chain under a Merkle root
signed with a key kept outside the database; each checkpoint carries the
previous one's hash, so checkpoints form a chain of their own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Position in the checkpoint chain; unique, so two writers cannot fork it.
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    # "periodic:<minutes>:<start>" for the worker, "manual:<time>:<nonce>" on
    # demand; unique, so several workers make exactly one per period.
    period: Mapped[str] = mapped_column(String(64), unique=True)
    format: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    root: Mapped[str] = mapped_column(String(64))
    # Roots of the fixed buckets the leaves fall in: an inclusion proof then
    # reads one bucket of heads, not all of them.
    bucket_roots: Mapped[list[str]] = mapped_column(JSON)
    cases: Mapped[int] = mapped_column(Integer)
    series: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(32))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    # Chains found shortened, rewritten or gone when this checkpoint was made;
    # their earlier anchored head was kept, never replaced.
    anomalies: Mapped[list[str]] = mapped_column(JSON)


class AuditHead(Base):
    """The head of each chain as anchored by the latest checkpoint: its leaves.

    Rows are only added or moved forward along their own chain; a chain that
    went missing or backwards keeps its row, so the evidence outlives the next
    checkpoint.
    """

    __tablename__ = "audit_heads"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # case | disclosure
    chain_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    bucket: Mapped[int] = mapped_column(Integer)
    # Tracking number of a case, so a dropped case can be named by it.
    label: Mapped[str | None] = mapped_column(String(32))
    # The first checkpoint that anchored this (seq, head_hash).
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("audit_checkpoints.id"))

    __table_args__ = (Index("ix_audit_heads_bucket", "bucket"),)
