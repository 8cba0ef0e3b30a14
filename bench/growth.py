"""How staff reads grow with the data: queue pages, overview, rankings, suggest.

Each endpoint is called over HTTP on the running uvicorn server, one request
at a time (the time of one read, not throughput), with warm-up calls first
and the median of the rounds kept. The "next page" follows the first page's
own next_cursor, whatever form the cursor takes.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

COUNTY = "511702000000"
SUGGEST_TEXT = "村里的低保评得不公平，村干部把名额给了自己亲戚，我们组好几户困难户都没评上"
READS: dict[str, str] = {
    "queue_first_page": "/api/v1/staff/complaints?limit=50",
    "queue_next_page": "",  # filled from the first page's next_cursor
    "queue_red_cards": "/api/v1/staff/complaints?limit=50&card=red",
    "queue_county_open": f"/api/v1/staff/complaints?limit=50&region_code={COUNTY}&status=accepted",
    "overview": "/api/v1/staff/stats/overview",
    "overview_county": f"/api/v1/staff/stats/overview?region_code={COUNTY}",
    "rankings": "/api/v1/staff/stats/rankings",
    "taxonomy_suggest": "POST /api/v1/taxonomy/suggest",
}
# Goal: at the largest size at most 2x the smallest for these.
GOAL_KEYS = ("queue_first_page", "queue_next_page", "overview", "rankings")


def measure(base_url: str, token: str, *, rounds: int, warmup: int) -> dict[str, float]:
    h = {"Authorization": f"Bearer {token}"}
    out: dict[str, float] = {}
    with httpx.Client(base_url=base_url, headers=h, timeout=120) as http:
        first = http.get(READS["queue_first_page"])
        first.raise_for_status()
        cursor = first.json().get("next_cursor")
        paths = dict(READS)
        paths["queue_next_page"] = (
            f"{READS['queue_first_page']}&cursor={cursor}" if cursor else READS["queue_first_page"]
        )
        for key, path in paths.items():

            def call(path: str = path) -> httpx.Response:
                if path.startswith("POST "):
                    return http.post(path.removeprefix("POST "), json={"text": SUGGEST_TEXT})
                return http.get(path)

            for _ in range(warmup):
                call().raise_for_status()
            samples = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                resp = call()
                samples.append(time.perf_counter() - t0)
                resp.raise_for_status()
            out[key] = round(statistics.median(samples) * 1000, 2)
    return out


def ratios(by_size: dict[int, dict[str, float]]) -> dict[str, Any]:
    sizes = sorted(by_size)
    lo, hi = sizes[0], sizes[-1]
    table = {
        key: round(by_size[hi][key] / by_size[lo][key], 2) if by_size[lo][key] else None
        for key in by_size[lo]
    }
    return {
        "from": lo,
        "to": hi,
        "ratio": table,
        "goal": 2.0,
        "goal_keys": list(GOAL_KEYS),
        "met": {k: (table[k] or 0) <= 2.0 for k in GOAL_KEYS},
    }
