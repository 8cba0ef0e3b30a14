"""Liveness and readiness, outside /api/v1 so load balancers need no auth."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.deps import ClockDep, SettingsDep, StoreDep
from app.notifications import service as notify
from app.routing import calendar_service
from app.stats import projector

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", summary="Process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database and object storage are reachable")
async def readyz(
    request: Request, store: StoreDep, clock: ClockDep, settings: SettingsDep
) -> JSONResponse:
    checks: dict[str, Any] = {}
    projection: dict[str, Any] = {}
    failing: list[str] = []
    warnings: list[str] = []

    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with request.app.state.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
                warnings = await calendar_service.readiness_warnings(
                    session, now=clock.now(), settings=settings
                )
                held = await notify.waiting_count(session, settings)
                if held:
                    warnings.append(
                        f"{held} 条群众通知因未配置微信订阅消息（YDT_WECHAT_APPID、"
                        "YDT_WECHAT_SECRET、YDT_WECHAT_TEMPLATES）暂未发送，配置后将自动发出"
                    )
                behind = await projector.lag(session)
        checks["database"] = "ok"
        lag_s = behind.seconds(clock.now())
        projection = {
            "pending": behind.pending,
            "lag_seconds": round(lag_s, 1),
            "high_water": behind.high_water,
        }
        if projector.worth_warning(lag_s, settings):
            # A warning, not a failure: requests are served, statistics trail.
            warnings.append(
                f"projector: statistics trail the event log by {lag_s:.0f} s "
                f"({behind.pending} events queued); is `ydt worker` running?"
            )
    except Exception as exc:
        logger.warning("readiness: database failed", extra={"error": repr(exc)})
        checks["database"] = f"error: {type(exc).__name__}"
        failing.append("database")

    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await store.check()
        checks["storage"] = "ok"
    except Exception as exc:
        logger.warning("readiness: storage failed", extra={"error": repr(exc)})
        checks["storage"] = f"error: {type(exc).__name__}"
        failing.append("storage")

    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if projection:  # how far the statistics trail the event log (app/stats/projector.py)
        body["projector"] = projection
    if warnings:
        body["warnings"] = warnings
    if failing:
        body = {
            "error": "not_ready",
            "detail": "unreachable: " + ", ".join(failing),
            **body,
        }
        return JSONResponse(status_code=503, content=body)
    return JSONResponse(status_code=200, content=body)
