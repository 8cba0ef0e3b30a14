from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel

from app.core.deps import SessionDep
from app.core.errors import Conflict, NotFound
from app.main import create_app
from app.models import StaffUser
from tests import support
from tests.conftest import make_settings


class Body(BaseModel):
    n: int


def _app() -> FastAPI:
    app = create_app(
        make_settings(database_url="sqlite+aiosqlite:///:memory:"), configure_logs=False
    )
    r = APIRouter()

    @r.get("/boom/notfound")
    async def nf() -> None:
        raise NotFound("案件不存在")

    @r.get("/boom/conflict")
    async def cf() -> None:
        raise Conflict("案件已被他人处理，请刷新后重试")

    @r.get("/boom/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    @r.post("/boom/body")
    async def body(b: Body) -> dict[str, int]:
        return {"n": b.n}

    app.include_router(r)
    return app


async def _get(method: str, path: str, **kw: object) -> tuple[int, dict[str, object]]:
    transport = ASGITransport(app=_app(), raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as c:
        resp = await c.request(method, path, **kw)  # type: ignore[arg-type]
    return resp.status_code, resp.json()


async def test_app_errors_render_one_shape() -> None:
    assert await _get("GET", "/boom/notfound") == (
        404,
        {"error": "not_found", "detail": "案件不存在"},
    )
    status, body = await _get("GET", "/boom/conflict")
    assert status == 409 and body["error"] == "conflict"


async def test_payload_validation_is_422() -> None:
    status, _ = await _get("POST", "/boom/body", json={"n": "not a number"})
    assert status == 422


async def test_unexpected_errors_are_json_500_with_request_id() -> None:
    status, body = await _get("GET", "/boom/bug", headers={"x-request-id": "abc-123"})
    assert status == 500
    assert body["error"] == "internal_error" and body["request_id"] == "abc-123"


async def test_unknown_route_is_404_json() -> None:
    assert await _get("GET", "/nope") == (404, {"error": "not_found", "detail": "Not Found"})


async def test_wrong_method_is_405_in_the_same_shape() -> None:
    status, body = await _get("DELETE", "/boom/notfound")
    assert status == 405 and body["error"] == "method_not_allowed"


async def test_a_failed_commit_is_an_error_not_a_success(tmp_path: Path) -> None:
    """The request's transaction commits before the response is sent: a commit
    that fails must reach the client as an error, never as a 200."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    await asyncio.to_thread(support.alembic_upgrade, url)
    app = create_app(make_settings(database_url=url), configure_logs=False)
    r = APIRouter()

    @r.post("/boom/commit")
    async def commit_fails(session: SessionDep) -> dict[str, bool]:
        session.add(StaffUser(username="x"))  # NOT NULL columns missing: fails at commit
        return {"ok": True}

    app.include_router(r)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://t") as c:
        resp = await c.post("/boom/commit")
    assert resp.status_code == 500
    assert resp.json()["error"] == "internal_error"
