"""How the staff reads grow with data: overview, rankings, queue pages.

For each size a fresh PostgreSQL database is migrated, seeded and filled by
bench.datagen (COPY); then each endpoint is called through the app (httpx
over ASGI, in process) with warm-up rounds, and the median is kept. Ratios
against the smallest size are what matter on this 2-core machine.

Usage: python -m bench.stats_scale --sizes 10000 1000000 [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.clock import FixedClock  # noqa: E402
from app.core.db import create_engine  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models.enums import StaffRole  # noqa: E402
from app.reference import service as reference_service  # noqa: E402
from app.staff import service as staff_service  # noqa: E402
from app.staff.schemas import StaffCreate  # noqa: E402
from bench.datagen import generate  # noqa: E402
from tests import support  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
ENDPOINTS = {
    "overview": "/api/v1/staff/stats/overview",
    "overview_county": "/api/v1/staff/stats/overview?region_code=511702000000",
    "rankings": "/api/v1/staff/stats/rankings",
    "queue_first_page": "/api/v1/staff/complaints?limit=50",
    "queue_next_page": "/api/v1/staff/complaints?limit=50&cursor=50",
    "queue_red_cards": "/api/v1/staff/complaints?limit=50&card=red",
}


async def measure(size: int, rounds: int) -> dict[str, object]:
    name, url = await support.create_pg_database()
    try:
        await asyncio.to_thread(support.alembic_upgrade, url)
        settings = make_settings(database_url=url)
        engine = create_engine(settings, url=url)
        async with AsyncSession(engine, expire_on_commit=False) as s:
            await reference_service.seed(s, now=NOW)
            await staff_service.create_staff(
                s,
                StaffCreate(
                    username="bench.admin",
                    password="Bench#2026x",
                    role=StaffRole.admin,
                    display_name="bench",
                ),
                now=NOW,
            )
            await s.commit()
        started = time.perf_counter()
        loaded = await generate(url.replace("postgresql+asyncpg", "postgresql"), size)
        load_seconds = time.perf_counter() - started
        app = create_app(settings, clock=FixedClock(NOW), engine=engine, configure_logs=False)
        timings: dict[str, float] = {}
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as http:
            token = (
                await http.post(
                    "/api/v1/staff/auth/login",
                    json={"username": "bench.admin", "password": "Bench#2026x"},
                )
            ).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}
            for key, path in ENDPOINTS.items():
                for _ in range(3):
                    assert (await http.get(path, headers=h)).status_code == 200
                samples = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    resp = await http.get(path, headers=h)
                    samples.append(time.perf_counter() - t0)
                    assert resp.status_code == 200
                timings[key] = round(statistics.median(samples) * 1000, 2)
        await engine.dispose()
        return {
            "size": size,
            **loaded,
            "load_seconds": round(load_seconds, 1),
            "median_ms": timings,
        }
    finally:
        await support.drop_pg_database(name)


async def main_async(sizes: list[int], rounds: int, out: Path) -> dict[str, object]:
    results = [await measure(n, rounds) for n in sizes]
    base = results[0]["median_ms"]  # type: ignore[index]
    top = results[-1]["median_ms"]  # type: ignore[index]
    ratios = {k: round(top[k] / base[k], 2) for k in base}  # type: ignore[index]
    report = {
        "machine": f"{os.cpu_count()} cores",
        "results": results,
        f"ratio_{sizes[-1]}_vs_{sizes[0]}": ratios,
        "goal": "overview and queue at the largest size at most 2x the smallest",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "stats_scale.json"))
    args = parser.parse_args()
    report = asyncio.run(main_async(args.sizes, args.rounds, Path(args.out)))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
