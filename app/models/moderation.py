"""WeChat content-security checks of residents' text and media (issue 12, item 22)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class Verdict(enum.StrEnum):
    """WeChat's ``result.suggest``, plus ``checking`` while no answer is in.

    Ordered by severity (``SEVERITY``): a media's verdict is the worst of its
    parts, and a case's flag the worst of its texts.
    """

    checking = "checking"
    pass_ = "pass"
    review = "review"
    risky = "risky"


SEVERITY = {Verdict.pass_: 0, Verdict.checking: 1, Verdict.review: 2, Verdict.risky: 3}


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=SEVERITY.__getitem__) if verdicts else Verdict.pass_


class CheckState(enum.StrEnum):
    due = "due"  # to (re)submit once ``next_at`` has passed
    submitted = "submitted"  # media: waiting for WeChat's push (trace_id)
    done = "done"  # ``verdict`` holds the answer


class ContentCheck(Base):
    """One thing sent to WeChat: a text, an image, a video's key frame or audio track.

    ``target`` names what is judged: ``complaint:<id>`` (its content),
    ``event:<id>`` (a supplement), ``rating:<id>`` (a comment), ``media:<id>``.
    The resident's openid (WeChat requires it) is sealed and bound to the
    target, and erased once the check is done.
    """

    __tablename__ = "content_checks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    target: Mapped[str] = mapped_column(String(80), index=True)
    complaint_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # text | image | audio
    part: Mapped[str] = mapped_column(String(32))  # text, image, audio, frame-0 ...
    object_key: Mapped[str | None] = mapped_column(String(200))
    openid_sealed: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(16))
    label: Mapped[int | None] = mapped_column(Integer)
    trace_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_content_checks_state_next", "state", "next_at"),)
