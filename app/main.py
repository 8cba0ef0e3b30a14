"""The application factory. Everything the app needs hangs off ``app.state``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api import API_ROUTERS
from app.complaints import repository as complaints_repository
from app.complaints import router as complaints_router
from app.console.apidocs import router as apidocs_router
from app.console.router import console as console_router
from app.console.templating import STATIC_DIR
from app.core import heap, keys
from app.core.boundary import Boundary
from app.core.clock import Clock, SystemClock
from app.core.config import ConfigurationError, Settings, get_settings
from app.core.db import (
    close_hot_connections,
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    tune_interpreter,
)
from app.core.errors import install_error_handlers
from app.core.hotpath import HotRoutes
from app.core.logging import RequestIdMiddleware, configure_logging
from app.core.replica import ReadYourWrites, Replica
from app.core.security import TokenService
from app.core.shared import SharedStore, create_shared_store
from app.core.storage import MediaStore, create_media_store
from app.health.router import router as health_router
from app.media.router import files_router
from app.notifications import templates as notice_templates
from app.open311 import router as open311
from app.openapi import install_openapi
from app.public_site.router import router as public_site_router
from app.routing import service as routing_service
from app.stats import projector
from app.wechat.client import WeChatClient
from app.wechat.standin import router as standin_router

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    media_store: MediaStore | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    settings = settings or get_settings()
    if configure_logs:
        configure_logging(settings.log_level, json_lines=settings.log_json)
    # Fail before serving anything when the configuration is unsafe.
    secret = settings.resolved_jwt_secret()
    keys.install(keys.Keyring.from_settings(settings))  # identity and chain keys, or refuse
    try:
        notice_templates.check_layouts(settings.wechat_template_fields)
    except ValueError as exc:
        raise ConfigurationError(f"YDT_WECHAT_TEMPLATE_FIELDS: {exc}") from exc
    owns_engine = engine is None
    engine = engine or create_engine(settings)
    tune_interpreter(engine)
    store = media_store or create_media_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await store.start()
        except Exception as exc:  # keep serving; /readyz reports storage as down
            logger.error("object storage not ready at start", extra={"error": repr(exc)})
        heap.settle()  # start-up's objects out of the collector's sight (app/core/heap.py)
        projecting = None
        if settings.projector_in_app:  # processes take turns (app/stats/projector.py)
            projecting = asyncio.create_task(
                projector.run(
                    app.state.sessionmaker,
                    app.state.clock,
                    interval=settings.projector_interval_seconds,
                    batch=settings.projector_batch,
                )
            )
        yield
        if projecting is not None:
            projecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await projecting
        await app.state.wechat.aclose()
        close = getattr(app.state.shared_store, "close", None)
        if close is not None:
            await close()
        if app.state.replica is not None:
            await app.state.replica.close()
        await close_hot_connections(app.state.read_sessionmaker)
        if owns_engine:
            await engine.dispose()

    app = FastAPI(
        title="Yidiantong 监督一点通 API",
        version="1.0.0",
        summary="Citizen supervision platform: complaints, routing, deadlines, disclosures.",
        lifespan=lifespan,
        # Served by app.console.apidocs from vendored assets (work offline).
        docs_url=None,
        redoc_url=None,
        # FastAPI's OpenTelemetry bridge looked up three providers in the
        # environment on every request (5 µs of a 0.5 ms read) to find none
        # configured: on only where an operator has set OpenTelemetry up.
        telemetry=None
        if settings.telemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = create_read_sessionmaker(engine, settings)
    # One writer at a time per process on SQLite, queued here (app/core/db.py).
    app.state.sqlite_writers = asyncio.Lock() if engine.dialect.name == "sqlite" else None
    app.state.clock = clock or SystemClock()
    shared: SharedStore = create_shared_store(settings, app.state.sessionmaker)
    app.state.shared_store = shared
    app.state.wechat = WeChatClient(settings, shared)
    # Staff queue, ledger and statistics may read a streaming replica (app/core/replica.py).
    replica = settings.database_replica_url and Replica(settings, engine, shared, app.state.clock)
    app.state.replica = replica or None
    app.state.media_store = store
    app.state.tokens = TokenService(
        secret,
        access_minutes=settings.jwt_access_minutes,
        refresh_days=settings.jwt_refresh_days,
    )
    routing_service.register_load_counter(complaints_repository.open_cases_by_cadre)
    install_error_handlers(app)
    app.state.url_error_renderers = {open311.PREFIX + "/": open311.url_error}
    # Innermost: the residents' two hottest reads, served beside the routing.
    app.add_middleware(HotRoutes, routes=complaints_router.hot_routes(API_PREFIX))
    if app.state.replica is not None:  # a staff write's WAL position, before its answer
        app.add_middleware(ReadYourWrites)
    # Added first, so it runs inside RequestIdMiddleware: its answers carry the id.
    app.add_middleware(Boundary, settings=settings)
    app.add_middleware(RequestIdMiddleware)
    install_openapi(app)
    for api_router in API_ROUTERS:
        app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(health_router)
    app.include_router(files_router)
    app.include_router(open311.router)
    app.include_router(apidocs_router)
    app.include_router(console_router)
    app.include_router(public_site_router)
    if settings.wechat_standin:  # the embedded default's demo only (see Settings)
        app.include_router(standin_router)
        logger.warning("WeChat stand-in at /dev/wechat: demo logins, no real WeChat")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
