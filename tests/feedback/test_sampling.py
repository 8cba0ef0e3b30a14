from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.feedback.sampling import draw, quarter_bounds

CASES = [
    (f"c{i:03d}", 1 if i < 50 else 2 if i < 53 else 3) for i in range(60)
]  # units of 50, 3 and 7


def test_stratified_ceiling_per_unit() -> None:
    picked = draw(CASES, seed="s", fraction=0.2)
    assert {u: len(v) for u, v in picked.items()} == {1: 10, 2: 1, 3: 2}
    assert sum(len(v) for v in picked.values()) / len(CASES) >= 0.2


def test_same_seed_same_sample_and_another_seed_differs() -> None:
    assert draw(CASES, seed="abc", fraction=0.2) == draw(
        list(reversed(CASES)), seed="abc", fraction=0.2
    )
    assert draw(CASES, seed="abc", fraction=0.2) != draw(CASES, seed="xyz", fraction=0.2)


def test_quarter_bounds() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    assert quarter_bounds("2026Q4", tz) == (
        datetime(2026, 10, 1, tzinfo=tz),
        datetime(2027, 1, 1, tzinfo=tz),
    )
    assert quarter_bounds("2026-q1", tz)[1] == datetime(2026, 4, 1, tzinfo=tz)
    for bad in ("2026Q5", "26Q1", "2026-13", "Q32026"):
        with pytest.raises(ValueError):
            quarter_bounds(bad, tz)
