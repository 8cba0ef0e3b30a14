"""The case workflow as data: one transition table, one card rule.

Everything here is pure, so the table and the warning-card boundaries are
tested without a database or a clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from app.core.errors import Conflict
from app.models.enums import ComplaintStatus as S


class Action(enum.StrEnum):
    accept = "accept"
    reject = "reject"
    assign = "assign"
    transfer = "transfer"
    escalate = "escalate"
    reply = "reply"
    resolve = "resolve"
    sign = "sign"
    reopen = "reopen"
    extend = "extend"
    reclassify = "reclassify"


# An open case may go straight to closed only by being merged into another as
# its duplicate (app/duplicates/service.py): no action targets closed, and the
# sign-off path closes from resolved alone; unmerging is closed → reopened.
ALLOWED_TRANSITIONS: dict[S, frozenset[S]] = {
    S.submitted: frozenset({S.accepted, S.rejected, S.escalated, S.closed}),
    S.escalated: frozenset({S.accepted, S.rejected, S.escalated, S.closed}),
    S.accepted: frozenset({S.assigned, S.in_progress, S.escalated, S.resolved, S.closed}),
    S.assigned: frozenset({S.assigned, S.in_progress, S.escalated, S.resolved, S.closed}),
    S.in_progress: frozenset({S.assigned, S.in_progress, S.escalated, S.resolved, S.closed}),
    S.reopened: frozenset({S.assigned, S.in_progress, S.escalated, S.resolved, S.closed}),
    S.resolved: frozenset({S.closed, S.reopened}),
    S.closed: frozenset({S.reopened}),
    S.rejected: frozenset(),
}

# Where each status-changing action leads; reply/extend/sign keep the status
# (sign closes the case only when the last signature arrives).
ACTION_TARGET: dict[Action, S] = {
    Action.accept: S.accepted,
    Action.reject: S.rejected,
    Action.assign: S.assigned,
    Action.transfer: S.in_progress,
    Action.escalate: S.escalated,
    Action.resolve: S.resolved,
    Action.reopen: S.reopened,
}

# Actions that do not change the status, and the statuses they are allowed in.
IN_PLACE: dict[Action, frozenset[S]] = {
    Action.reply: frozenset({S.accepted, S.assigned, S.in_progress, S.reopened, S.escalated}),
    Action.extend: frozenset({S.accepted, S.assigned, S.in_progress, S.reopened}),
    Action.sign: frozenset({S.resolved}),
    # Correcting the resident's choice of item re-routes the case, so only
    # before any unit has committed to it (accepted, deadline announced).
    Action.reclassify: frozenset({S.submitted}),
}


class InvalidTransition(Conflict):
    code = "invalid_transition"


def transition_to(current: S, target: S) -> S:
    """The only gate for status changes."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"案件当前状态为“{current.label}”，不能变更为“{target.label}”")
    return target


def check_action(current: S, action: Action) -> S:
    """The status after ``action``, or 409 when it is not allowed now."""
    if action in ACTION_TARGET:
        return transition_to(current, ACTION_TARGET[action])
    if current not in IN_PLACE[action]:
        raise InvalidTransition(f"案件当前状态为“{current.label}”，不能执行该操作")
    return current


class Card(enum.StrEnum):
    none = "none"
    yellow = "yellow"
    orange = "orange"
    red = "red"


@dataclass(frozen=True, slots=True)
class CardThresholds:
    """Cards fall when at most these fractions of the allowed time remain.

    For a 90-day case 1/3 and 1/6 are exactly the seed's one month and half a
    month; overdue is red.
    """

    yellow: float = 1 / 3
    orange: float = 1 / 6

    def moments(self, received_at: datetime, due_at: datetime) -> tuple[datetime, datetime]:
        span = due_at - received_at
        return due_at - span * self.yellow, due_at - span * self.orange


def card_at(
    now: datetime,
    *,
    due_at: datetime,
    yellow_at: datetime,
    orange_at: datetime,
    open_: bool,
) -> Card:
    """The card from the case's stored moments: the same ones the queue filters
    and sorts by, so a later change of thresholds cannot make them disagree."""
    if not open_:
        return Card.none
    if now > due_at:
        return Card.red
    if now >= orange_at:
        return Card.orange
    if now >= yellow_at:
        return Card.yellow
    return Card.none


class Priority(enum.StrEnum):
    elderly = "elderly"
    disabled = "disabled"
    group = "group"
    emergency = "emergency"


PRIORITY_WEIGHT = {
    Priority.emergency: 8,
    Priority.group: 4,
    Priority.elderly: 2,
    Priority.disabled: 2,
}


def priority_score(flags: set[Priority]) -> int:
    return sum(PRIORITY_WEIGHT[f] for f in flags)
