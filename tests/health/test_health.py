from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.clock import FixedClock
from app.core.storage.s3 import S3MediaStore
from app.main import create_app
from tests import support
from tests.conftest import make_s3_store, make_settings


async def test_healthz_is_ok(client: AsyncClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


async def test_readyz_ok_with_database_and_local_storage(client: AsyncClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json()["checks"] == {"database": "ok", "storage": "ok"}
    assert resp.headers["x-request-id"]


async def _ready(app: FastAPI) -> tuple[int, dict[str, object]]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/readyz")
    return resp.status_code, resp.json()


async def test_readyz_ok_with_s3_and_503_naming_storage_when_s3_stops(engine: AsyncEngine) -> None:
    server = support.start_moto(__import__("pathlib").Path("/tmp"))
    try:
        store = make_s3_store(server, bucket="ready")
        await store.start()
        app = create_app(
            make_settings(storage="s3"), engine=engine, media_store=store, configure_logs=False
        )
        status, body = await _ready(app)
        assert status == 200, body
    finally:
        server.stop()
    status, body = await _ready(app)
    assert status == 503
    assert body["error"] == "not_ready"
    assert "storage" in str(body["detail"]) and "database" not in str(body["detail"])
    assert body["checks"] == {"database": "ok", "storage": "error: StorageError"}  # type: ignore[comparison-overlap]


async def test_readyz_503_naming_database_when_unreachable(tmp_path: object) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{support.free_port()}/nothing"
    store = S3MediaStore(
        endpoint="127.0.0.1:1",
        access_key="a",
        secret_key="b",
        bucket="x",
        secure=False,
        region="us-east-1",
    )
    app = create_app(make_settings(database_url=url), media_store=store, configure_logs=False)
    status, body = await _ready(app)
    assert status == 503
    assert body["detail"] == "unreachable: database, storage"


async def test_readyz_warns_in_december_about_next_years_calendar(
    app: FastAPI, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    status, body = await _ready(app)
    assert status == 200
    warnings = body.get("warnings")
    assert isinstance(warnings, list) and any("2027" in w for w in warnings)
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    status, body = await _ready(app)
    assert not any("2027" in w for w in body.get("warnings", []))
