"""The collector's settings a serving process takes (app/core/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.core import heap


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class _Cycle:
    freed = 0

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _Cycle.freed += 1


def test_settle_freezes_what_exists_and_still_collects_what_comes_after(restored: None) -> None:
    kept = [_Cycle() for _ in range(10)]  # alive at start-up, like the app's modules
    heap.settle()
    assert gc.get_threshold() == heap.THRESHOLDS
    assert gc.get_freeze_count() >= len(kept)
    # Cycles made after start-up (a request's) are still freed by the
    # collector running on its own, at the higher threshold: no gc.collect().
    _Cycle.freed = 0
    young = heap.THRESHOLDS[0]
    for _ in range(3 * young):
        _Cycle()  # each one garbage at once, reachable only from itself
    assert _Cycle.freed > 0
    # The frozen ones are not: they are alive, and out of the collector's sight.
    assert all(c.me is c for c in kept)
