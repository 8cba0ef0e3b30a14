"""A row's present state, derived from its events (replay).

The hash chain proves the events were not edited; it says nothing about the
``complaints`` or ``disclosures`` row beside it, which every screen reads.
Replaying the events and comparing the result with the row closes that gap:
editing the row's status, result, unit, deadline or content is named field
by field.

Events written since replay data exists carry ``data["state"]``: the row's
checked fields as they were after the step (all of them at filing, the
changed ones afterwards). Older events do not, so each kind also has a rule
saying what it implies (an escalation moves the unit, a resolution sets the
result ...). A field neither says anything about stays *unknown* and is not
compared, so a legacy case is checked on what its events carry and never
reported broken for what they do not.

Pure functions over ORM objects: nothing here touches a session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from app.models import Complaint, ComplaintEvent, Disclosure, DisclosureEvent

# Every column of a case the replay can vouch for. Left out on purpose:
# version/updated_at (bookkeeping), tracking_no (drawn after the filing events
# are built), the rollup's open_* marks, the query-code hash, location, and
# every identity column: identity is checked through its keyed commitment.
CASE_FIELDS: tuple[str, ...] = (
    "status",
    "channel",
    "content",
    "item_id",
    "item_code",
    "region_code",
    "township_code",
    "county_code",
    "accusation",
    "accused_level",
    "anonymous",
    "unit_id",
    "cadre_id",
    "department_code",
    "department_region_code",
    "handler_department_code",
    "handler_region_code",
    "filed_by_staff_id",
    "tier",
    "time_limit_days",
    "received_at",
    "accept_due_at",
    "due_at",
    "yellow_at",
    "orange_at",
    "priority",
    "priority_flags",
    "routing_trace",
    "accepted_at",
    "resolved_at",
    "closed_at",
    "result",
    "reopen_count",
    "disclosure_id",
    "disclosure_row",
)
IDENTITY = "identity_commitment"  # written by filing into data["identity_commitment"]
CHECKABLE = frozenset({*CASE_FIELDS, IDENTITY})
# Long free text is carried as a digest, not a second copy.
DIGESTED = frozenset({"content"})


def moment(at: datetime) -> str:
    """The same instant renders the same on every backend and time zone."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def norm(value: Any) -> Any:
    """A column value as it is written into event data (plain JSON)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return moment(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    return value


def digest(value: Any) -> str:
    text = value if isinstance(value, str) else canonical(norm(value))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def case_value(c: Complaint, name: str) -> Any:
    value = getattr(c, name)
    return digest(value) if name in DIGESTED else norm(value)


def snapshot(c: Complaint) -> dict[str, Any]:
    """Every checked field of a new case: the filing event's ``state``."""
    return {name: case_value(c, name) for name in CASE_FIELDS}


def changed(c: Complaint, names: Iterable[str]) -> dict[str, Any]:
    """The checked fields among ``names``, read back from the row after a
    step wrote them: the step's event's ``state``."""
    return {name: case_value(c, name) for name in names if name in CASE_FIELDS}


def _instant(value: Any) -> Any:
    """An ISO timestamp from legacy event data, normalised like a column."""
    if isinstance(value, str):
        try:
            return moment(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


@dataclass
class Replayed:
    """What the events say about the row: ``values`` for the fields they
    determine; every other checkable field is unknown."""

    values: dict[str, Any] = field(default_factory=dict)

    @property
    def unknown(self) -> list[str]:
        names = [n for n in CASE_FIELDS if n not in self.values]
        return names


def _legacy(kind: str, e: ComplaintEvent, data: Mapping[str, Any], v: dict[str, Any]) -> None:
    """What an event without ``state`` implies, by its kind: facts of the code
    that wrote it (the workflow's effects), read from what it did carry."""
    at = moment(e.created_at)
    if kind == "filed":
        v.update(
            reopen_count=0,
            accepted_at=None,
            resolved_at=None,
            closed_at=None,
            result=None,
            handler_department_code=None,
            handler_region_code=None,
            disclosure_id=data.get("disclosure_id"),
            disclosure_row=data.get("disclosure_row"),
        )
        for name in ("unit_id", "channel"):
            if name in data:
                v[name] = data[name]
        if "received_at" in data:
            v["received_at"] = _instant(data["received_at"])
    elif kind == "routed":
        for name in ("unit_id", "cadre_id"):
            if name in data:
                v[name] = data[name]
        if "trace" in data:
            v["routing_trace"] = list(data["trace"])
    elif kind == "accepted":
        v["accepted_at"] = at
    elif kind == "assigned" and "cadre_id" in data:
        v["cadre_id"] = data["cadre_id"]
    elif kind == "transferred":
        v["handler_department_code"] = data.get("department_code")
        v["handler_region_code"] = data.get("region_code")
    elif kind == "escalated" and "to_unit_id" in data:
        v.update(unit_id=data["to_unit_id"], cadre_id=None)
    elif kind == "resolved":
        # The result is the public reply; before ``public_reply`` it was the note.
        v.update(resolved_at=at, result=data.get("public_reply", e.note))
    elif kind == "reopened":
        if "reopen_count" in v:
            v["reopen_count"] += 1
        v.update(resolved_at=None, closed_at=None, result=None)
        v.pop("priority_flags", None)  # a verdict's reopen adds a flag it did not record
    elif kind == "extended" and "new_due_at" in data:
        v["due_at"] = _instant(data["new_due_at"])
        if "time_limit_days" in v and isinstance(data.get("days"), int):
            v["time_limit_days"] += data["days"]
        v.pop("yellow_at", None)
        v.pop("orange_at", None)
    elif kind == "closed":
        v["closed_at"] = at


def replay_case(events: Sequence[ComplaintEvent]) -> Replayed:
    v: dict[str, Any] = {}
    for e in events:
        data = e.data if isinstance(e.data, dict) else {}
        if e.to_status:
            v["status"] = e.to_status
        if e.kind == "filed" and isinstance(data.get(IDENTITY), str):
            v[IDENTITY] = data[IDENTITY]
        state = data.get("state")
        if isinstance(state, dict):
            v.update({k: val for k, val in state.items() if k in CASE_FIELDS})
        else:
            _legacy(e.kind, e, data, v)
    return Replayed(v)


@dataclass(frozen=True, slots=True)
class Mismatch:
    field: str
    row: Any
    events: Any

    def render(self) -> str:
        return f"field {self.field!r} is {_show(self.row)} but its events say {_show(self.events)}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


_MISSING = object()


def case_mismatches(c: Complaint, replayed: Replayed) -> list[Mismatch]:
    found = []
    for name in (*CASE_FIELDS, IDENTITY):
        if name not in replayed.values:
            continue
        if name == IDENTITY:
            row = getattr(c, IDENTITY, _MISSING)
            if row is _MISSING:  # the column does not exist in this schema
                continue
        else:
            row = case_value(c, name)
        if row != replayed.values[name]:
            found.append(Mismatch(name, row, replayed.values[name]))
    return found


# --- disclosures -------------------------------------------------------------

DISCLOSURE_CONTENT: tuple[str, ...] = (
    "region_code",
    "category",
    "period_kind",
    "period",
    "title",
    "body",
    "rows",
    "attachment_ids",
    "opening_fen",
    "closing_fen",
    "income_fen",
    "expense_fen",
)
DISCLOSURE_FIELDS: tuple[str, ...] = (
    "status",
    "published_at",
    "withdrawn_at",
    "supersedes_id",
    "superseded_by_id",
    *(f"content.{n}" for n in DISCLOSURE_CONTENT),
)


def disclosure_content(d: Disclosure) -> dict[str, str]:
    """Per-field digests of what a disclosure says: carried by every event that
    sets or publishes it, so a changed figure is named by its field."""
    return {name: digest(getattr(d, name)) for name in DISCLOSURE_CONTENT}


def disclosure_value(d: Disclosure, name: str) -> Any:
    if name.startswith("content."):
        return digest(getattr(d, name.removeprefix("content.")))
    return norm(getattr(d, name))


@dataclass
class SeriesReplay:
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)
    orphans: list[tuple[int, int]] = field(default_factory=list)  # (seq, disclosure id)


def _content(v: dict[str, Any], data: Mapping[str, Any]) -> None:
    carried = data.get("content")
    for name in DISCLOSURE_CONTENT:
        key = f"content.{name}"
        if isinstance(carried, dict) and isinstance(carried.get(name), str):
            v[key] = carried[name]
        else:
            v.pop(key, None)


def replay_series(events: Sequence[DisclosureEvent]) -> SeriesReplay:
    out = SeriesReplay()
    for e in events:
        data = e.data if isinstance(e.data, dict) else {}
        at = moment(e.created_at)
        if e.kind in ("created", "correction_drafted"):
            v = out.versions[e.disclosure_id] = {
                "status": "draft",
                "published_at": None,
                "withdrawn_at": None,
                "superseded_by_id": None,
            }
            if e.kind == "correction_drafted" and isinstance(data.get("of"), int):
                v["supersedes_id"] = data["of"]
            elif e.kind == "created":
                v["supersedes_id"] = None
            _content(v, data)
            continue
        v = out.versions.get(e.disclosure_id)  # type: ignore[assignment]
        if v is None:
            out.orphans.append((e.seq, e.disclosure_id))
            continue
        if e.kind in ("edited", "rows_imported"):
            _content(v, data)
        elif e.kind == "published":
            v.update(status="published", published_at=at)
            if "content" in data:
                _content(v, data)
        elif e.kind == "superseded":
            v["status"] = "superseded"
            if isinstance(data.get("by"), int):
                v["superseded_by_id"] = data["by"]
        elif e.kind == "withdrawn":
            v.update(status="withdrawn", withdrawn_at=at)
    return out


def disclosure_mismatches(d: Disclosure, expected: Mapping[str, Any]) -> list[Mismatch]:
    return [
        Mismatch(name, disclosure_value(d, name), expected[name])
        for name in DISCLOSURE_FIELDS
        if name in expected and disclosure_value(d, name) != expected[name]
    ]
