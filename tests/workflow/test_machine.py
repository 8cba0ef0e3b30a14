"""The transition table and the card rule, exhaustively, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models.enums import ComplaintStatus as S
from app.workflow.machine import (
    ACTION_TARGET,
    ALLOWED_TRANSITIONS,
    IN_PLACE,
    Action,
    Card,
    CardThresholds,
    InvalidTransition,
    card_at,
    check_action,
    transition_to,
)

PAIRS = [(s, a) for s in S for a in Action]


def allowed(status: S, action: Action) -> bool:
    if action in ACTION_TARGET:
        return ACTION_TARGET[action] in ALLOWED_TRANSITIONS[status]
    return status in IN_PLACE[action]


@pytest.mark.parametrize(
    ("status", "action"), PAIRS, ids=[f"{s.value}-{a.value}" for s, a in PAIRS]
)
def test_every_status_action_pair(status: S, action: Action) -> None:
    if allowed(status, action):
        after = check_action(status, action)
        assert after == ACTION_TARGET.get(action, status)
    else:
        with pytest.raises(InvalidTransition) as err:
            check_action(status, action)
        assert err.value.status_code == 409 and status.label in err.value.detail


def test_the_table_covers_every_status_and_rejected_is_final() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(S)
    assert ALLOWED_TRANSITIONS[S.rejected] == frozenset()
    assert ALLOWED_TRANSITIONS[S.closed] == frozenset({S.reopened})


@pytest.mark.parametrize(
    ("a", "b"), [(S.submitted, S.resolved), (S.closed, S.accepted), (S.rejected, S.accepted)]
)
def test_forbidden_jumps(a: S, b: S) -> None:
    with pytest.raises(InvalidTransition):
        transition_to(a, b)


RECEIVED = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
DUE = RECEIVED + timedelta(days=90)  # a 90-day case: yellow at 30 days left, orange at 15


def moments(thresholds: CardThresholds) -> dict[str, datetime]:
    yellow_at, orange_at = thresholds.moments(RECEIVED, DUE)
    return {"due_at": DUE, "yellow_at": yellow_at, "orange_at": orange_at}


@pytest.mark.parametrize(
    ("left", "card"),
    [
        (timedelta(days=31), Card.none),
        (timedelta(days=30, seconds=1), Card.none),
        (timedelta(days=30), Card.yellow),  # exactly one month left
        (timedelta(days=15, seconds=1), Card.yellow),
        (timedelta(days=15), Card.orange),  # exactly half a month left
        (timedelta(0), Card.orange),  # due this instant: not yet overdue
        (-timedelta(seconds=1), Card.red),
    ],
)
def test_card_boundaries(left: timedelta, card: Card) -> None:
    now = DUE - left
    assert card_at(now, **moments(CardThresholds()), open_=True) is card


def test_closed_cases_wear_no_card() -> None:
    late = DUE + timedelta(days=9)
    assert card_at(late, **moments(CardThresholds()), open_=False) is Card.none


def test_thresholds_are_settings() -> None:
    strict = CardThresholds(yellow=0.5, orange=0.25)
    now = DUE - timedelta(days=40)
    assert card_at(now, **moments(strict), open_=True) is Card.yellow
    assert card_at(now, **moments(CardThresholds()), open_=True) is Card.none
