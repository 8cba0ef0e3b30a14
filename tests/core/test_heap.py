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
    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_what_exists_and_still_collects_what_comes_after(restored: None) -> None:
    kept = [_Cycle() for _ in range(10)]  # alive at start-up, like the app's modules
    heap.settle()
    assert gc.get_threshold() == heap.THRESHOLDS
    assert gc.get_freeze_count() >= len(kept)
    # A cycle made after start-up (a request's) is still found and freed.
    gc.collect()
    made = [_Cycle() for _ in range(100)]
    del made
    assert gc.collect() >= 100
