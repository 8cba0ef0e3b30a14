"""The quarterly callback sample (回访抽样) as a pure, reproducible function.

Stratified by unit: each unit contributes ceil(fraction × its closed cases),
so a small unit is never skipped and a large one cannot hide. The order
within a unit is sha256(seed ‖ case id), so the same seed gives the same
sample on any machine, and the seed is stored with the draw.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo


def draw(cases: Iterable[tuple[str, int]], *, seed: str, fraction: float) -> dict[int, list[str]]:
    """{unit_id: [case ids]} for (case id, unit id) pairs."""
    by_unit: dict[int, list[str]] = defaultdict(list)
    for case_id, unit_id in cases:
        by_unit[unit_id].append(case_id)
    out: dict[int, list[str]] = {}
    for unit_id, ids in sorted(by_unit.items()):
        k = math.ceil(fraction * len(ids) - 1e-9)
        ranked = sorted(ids, key=lambda cid: hashlib.sha256(f"{seed}:{cid}".encode()).hexdigest())
        out[unit_id] = ranked[:k]
    return out


def quarter_bounds(quarter: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """'2026Q3' (or '2026-Q3') → [start, end) in the local time zone."""
    text = quarter.upper().replace("-", "")
    if len(text) != 6 or text[4] != "Q" or not text[:4].isdigit() or text[5] not in "1234":
        raise ValueError("季度格式应为 2026Q3")
    year, q = int(text[:4]), int(text[5])
    start = date(year, 3 * (q - 1) + 1, 1)
    end = date(year + (q == 4), (3 * q) % 12 + 1, 1)
    return datetime.combine(start, time(), tz), datetime.combine(end, time(), tz)
