from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.core.deps import ClockDep, ReadSessionDep
from app.core.replica import ReplicaSessionDep
from app.core.schemas import BoundedDate
from app.staff.dependencies import ReadingStaff
from app.stats import ranking, rollup, service
from app.stats.schemas import Overview, PublicStats, Rankings

router = APIRouter(tags=["stats"])
RegionQuery = Annotated[str | None, Query(pattern=r"^\d{12}$")]


@router.get("/stats/public", response_model=PublicStats)
async def public_stats(
    session: ReadSessionDep, clock: ClockDep, region_code: RegionQuery = None
) -> PublicStats:
    return await service.public(session, region_code, now=clock.now())


@router.get("/staff/stats/overview", response_model=Overview)
async def overview(
    user: ReadingStaff,
    session: ReplicaSessionDep,
    clock: ClockDep,
    region_code: RegionQuery = None,
    date_from: Annotated[BoundedDate | None, Query(alias="from")] = None,
    date_to: Annotated[BoundedDate | None, Query(alias="to")] = None,
) -> Response:
    scope = await service.scope_filter(session, user)
    result = await service.overview(
        session,
        scope=scope,
        region_code=region_code,
        date_from=date_from,
        date_to=date_to,
        now=clock.now(),
    )
    # Serialised once, as built: FastAPI would otherwise validate the several
    # hundred breakdowns again against response_model, which stays for the docs.
    return Response(result.model_dump_json(), media_type="application/json")


@router.get("/staff/stats/rankings", response_model=Rankings)
async def rankings(
    user: ReadingStaff,
    session: ReplicaSessionDep,
    clock: ClockDep,
    date_from: Annotated[BoundedDate | None, Query(alias="from")] = None,
    date_to: Annotated[BoundedDate | None, Query(alias="to")] = None,
    min_cases: Annotated[int, Query(ge=1, le=10_000)] = 5,
) -> Response:
    scope = await service.scope_filter(session, user)
    today = rollup.local_date(clock.now())  # the local day, not UTC's
    end = date_to or today
    start = date_from or (end - timedelta(days=90))
    result = await ranking.rankings(
        session,
        scope=scope,
        date_from=start,
        date_to=end,
        now=clock.now(),
        min_cases=min_cases,
    )
    # As the overview: at a million cases the answer carries a hundred alerts
    # with their case ids, and FastAPI's second validation against
    # response_model (kept for the docs) cost more than building it.
    return Response(result.model_dump_json(), media_type="application/json")
