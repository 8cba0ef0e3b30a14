"""One generated case's event chain, in the app's own hash-chain format.

The chain follows the paths the app really writes (filing and routing, then
acceptance or rejection, assignment, transfer, replies, resolution, the four
sign-off slots, the resident's rating, closure, reopening), so the tables have
realistic sizes and `ydt audit verify` accepts the generated data. Hashes come
from `app.complaints.events.compute_hash`, not a copy of it, so the format cannot
drift from the app's.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from app.complaints.events import GENESIS, compute_hash

EVENT_COLUMNS = [
    "complaint_id",
    "seq",
    "kind",
    "public",
    "actor_kind",
    "actor_id",
    "from_status",
    "to_status",
    "note",
    "data",
    "created_at",
    "prev_hash",
    "hash",
]
STAFF_SLOTS = ("handler", "supervising_leader", "principal_leader")


@dataclass
class Case:
    id: str
    citizen_id: int
    unit_id: int
    unit_name: str
    status: str
    received: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    due: datetime
    rating: tuple[str, int] | None  # (satisfaction, score) when the resident rated


class Chain:
    """Appends events to one case, keeping times ordered and never after now."""

    def __init__(self, case: Case, now: datetime) -> None:
        self.case, self.now = case, now
        self.rows: list[tuple[object, ...]] = []
        self.events: list[SimpleNamespace] = []
        self.prev = GENESIS
        self.last = case.received

    def add(
        self,
        kind: str,
        at: datetime,
        *,
        public: bool,
        actor_kind: str = "staff",
        actor_id: int | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        at = min(max(at, self.last), self.now).astimezone(UTC)
        self.last = at
        event = SimpleNamespace(
            complaint_id=self.case.id,
            seq=len(self.rows) + 1,
            kind=kind,
            public=public,
            actor_kind=actor_kind,
            actor_id=actor_id,
            from_status=from_status,
            to_status=to_status,
            note=note,
            data=data or {},
            created_at=at,
        )
        digest = compute_hash(self.prev, event)  # type: ignore[arg-type]
        self.rows.append(
            (
                event.complaint_id,
                event.seq,
                kind,
                public,
                actor_kind,
                actor_id,
                from_status,
                to_status,
                note,
                json.dumps(event.data, ensure_ascii=False),
                at,
                self.prev,
                digest,
            )
        )
        self.events.append(event)
        self.prev = digest


def build_chain(case: Case, rnd: random.Random, now: datetime) -> Chain:
    c, ch = case, Chain(case, now)
    staff = 1  # the bench admin: events need an actor, not a particular one
    ch.add(
        "filed",
        c.received,
        public=True,
        actor_kind="citizen",
        actor_id=c.citizen_id,
        to_status="submitted",
        note=f"已登记，由{c.unit_name}负责办理",
        data={
            "channel": "online",
            "unit_id": c.unit_id,
            "received_at": c.received.isoformat(),
            "media_ids": [],
        },
    )
    ch.add(
        "routed",
        c.received,
        public=False,
        actor_kind="system",
        data={
            "unit_id": c.unit_id,
            "cadre_id": None,
            "override_id": None,
            "trace": [],
            "warnings": [],
        },
    )
    if c.status == "rejected":
        ch.add(
            "rejected",
            c.received + timedelta(hours=rnd.uniform(2, 30)),
            public=True,
            actor_id=staff,
            from_status="submitted",
            to_status="rejected",
            note="不属于纪检监察机关受理范围，已告知向有关部门反映",
        )
        return ch
    if c.accepted_at is None:
        return ch
    ch.add(
        "accepted",
        c.accepted_at,
        public=True,
        actor_id=staff,
        from_status="submitted",
        to_status="accepted",
        note=f"{c.unit_name}已受理",
    )
    if c.status == "accepted":
        return ch
    span = (c.resolved_at or now) - c.accepted_at
    ch.add(
        "assigned",
        c.accepted_at + span * 0.05,
        public=False,
        actor_id=staff,
        from_status="accepted",
        to_status="assigned",
        data={"cadre_id": staff},
    )
    status = "assigned"
    if c.status == "in_progress" or (c.status != "assigned" and rnd.random() < 0.4):
        ch.add(
            "transferred",
            c.accepted_at + span * 0.15,
            public=True,
            actor_id=staff,
            from_status=status,
            to_status="in_progress",
            note="已转职能部门办理",
        )
        status = "in_progress"
    if rnd.random() < 0.5:
        ch.add(
            "replied",
            c.accepted_at + span * 0.5,
            public=True,
            actor_id=staff,
            from_status=status,
            note="已实地核查，正在协调处理",
        )
    if c.resolved_at is None:
        return ch
    ch.add(
        "resolved",
        c.resolved_at,
        public=True,
        actor_id=staff,
        from_status=status,
        to_status="resolved",
        note="经核查，问题已整改到位",
    )
    if c.status == "resolved":
        return ch
    if c.status == "reopened":
        ch.add(
            "reopened",
            c.resolved_at + timedelta(days=rnd.uniform(1, 5)),
            public=True,
            actor_kind="citizen",
            actor_id=c.citizen_id,
            from_status="resolved",
            to_status="reopened",
            note="群众对办理结果不满意，重新办理",
            data={"flag": "dissatisfied"},
        )
        return ch
    assert c.closed_at is not None
    for i, slot in enumerate(STAFF_SLOTS):
        ch.add(
            "signed",
            c.resolved_at + (c.closed_at - c.resolved_at) * (i + 1) / 5,
            public=False,
            actor_id=staff,
            from_status="resolved",
            data={"slot": slot},
        )
    if c.rating:
        satisfaction, score = c.rating
        ch.add(
            "rated",
            c.closed_at,
            public=True,
            actor_kind="citizen",
            actor_id=c.citizen_id,
            data={"score": score, "satisfaction": satisfaction, "round": 1},
        )
        ch.add(
            "signed",
            c.closed_at,
            public=False,
            actor_kind="citizen",
            actor_id=c.citizen_id,
            data={"slot": "complainant", "via": "rating"},
        )
    else:
        ch.add(
            "signed",
            c.closed_at,
            public=False,
            actor_id=staff,
            note="电话回访，群众认可办理结果",
            data={"slot": "complainant"},
        )
    workdays = max(1, int((c.closed_at - c.received).days * 5 / 7))
    ch.add(
        "closed",
        c.closed_at,
        public=True,
        actor_kind="system",
        from_status="resolved",
        to_status="closed",
        note="会签完毕，已销号",
        data={
            "on_time": c.closed_at <= c.due,
            "handling_days": workdays,
            "due_at": c.due.isoformat(),
        },
    )
    return ch
