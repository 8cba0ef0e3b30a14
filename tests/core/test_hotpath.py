"""The residents' two hottest reads served beside the routing (app/core/hotpath.py).

The hot lane must take exactly the requests its FastAPI twin accepts as they
are, answer them byte for byte as the twin does, and leave every other
request (bad input included) to the framework's usual answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import exc as sa_exc

from app.complaints import router as complaints_router
from app.complaints import service
from app.core.errors import DatabaseUnavailable
from app.core.hotpath import HotRoutes
from app.main import API_PREFIX
from tests.complaints.test_filing import login, payload
from tests.support import api_routes

pytestmark = pytest.mark.usefixtures("seeded")


def served_hot(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the hot lane answered (the rest went through the router)."""
    seen: list[str] = []
    real = HotRoutes._serve

    async def recording(self: HotRoutes, route: Any, arguments: Any, scope: Any, *a: Any) -> None:
        seen.append(scope["path"])
        await real(self, route, arguments, scope, *a)

    monkeypatch.setattr(HotRoutes, "_serve", recording)
    return seen


def no_hot_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    async def straight(self: HotRoutes, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    monkeypatch.setattr(HotRoutes, "__call__", straight)


async def file_two(client: AsyncClient) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    h = await login(client, "hot-owner")
    named = await client.post("/api/v1/complaints", json=payload(), headers=h)
    anonymous = await client.post(
        "/api/v1/complaints",
        json=payload(anonymous=True, contact_name=None, contact_phone=None),
        headers=h,
    )
    assert named.status_code == anonymous.status_code == 201, (named.text, anonymous.text)
    return h, named.json(), anonymous.json()


async def test_the_hot_lane_answers_as_the_routes_do(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, named, anonymous = await file_two(client)
    other = await login(client, "hot-other")
    track = f"/api/v1/track/{anonymous['tracking_no']}"
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        (f"/api/v1/complaints/{named['id']}", {}, h),  # 200
        (f"/api/v1/complaints/{named['id']}", {}, other),  # another's case: 404
        (f"/api/v1/complaints/{named['id']}", {}, {}),  # no token: 401
        (f"/api/v1/complaints/{named['id']}", {}, {"Authorization": "Bearer forged"}),  # 401
        ("/api/v1/complaints/" + "f" * 32, {}, h),  # unknown: 404
        (track, {"query_code": anonymous["query_code"]}, {}),  # 200
        (track, {"query_code": "WRONG234"}, {}),  # 404
    ]
    with monkeypatch.context() as m:
        seen = served_hot(m)
        hot = [await client.get(url, params=q, headers=hh) for url, q, hh in cases]
        assert len(seen) == len(cases)
    with monkeypatch.context() as m:
        no_hot_lane(m)
        routed = [await client.get(url, params=q, headers=hh) for url, q, hh in cases]
    assert [r.status_code for r in hot] == [200, 404, 401, 401, 404, 200, 404]
    for a, b in zip(hot, routed, strict=True):
        assert (a.status_code, a.content) == (b.status_code, b.content)
        assert a.headers.get("content-type") == b.headers.get("content-type")
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")
        assert "x-request-id" in a.headers  # inside the request-id middleware
    assert hot[2].json()["error"] == "unauthorized"


async def test_what_the_routes_would_not_take_as_it_is_goes_the_usual_way(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad input, other methods and the neighbouring routes: the framework's
    answers, unchanged (the hot lane stands aside for every one)."""
    h, named, anonymous = await file_two(client)
    number = anonymous["tracking_no"]
    seen = served_hot(monkeypatch)
    too_long = await client.get("/api/v1/complaints/" + "a" * 65, headers=h)
    assert too_long.status_code == 422
    mine = await client.get("/api/v1/complaints/mine", headers=h)
    assert mine.status_code == 200 and len(mine.json()["items"]) == 2
    head = await client.head(f"/api/v1/complaints/{named['id']}", headers=h)
    assert head.status_code in (200, 405)
    nested = await client.get(f"/api/v1/complaints/{named['id']}/supplements", headers=h)
    assert nested.status_code == 405
    no_code = await client.get(f"/api/v1/track/{number}")
    assert no_code.status_code == 422
    short = await client.get(f"/api/v1/track/{number}", params={"query_code": "abc"})
    assert short.status_code == 422
    long_no = await client.get("/api/v1/track/" + "D" * 25, params={"query_code": "ABCD2345"})
    assert long_no.status_code == 422
    twice = await client.get(
        f"/api/v1/track/{number}?query_code=WRONG234&query_code={anonymous['query_code']}"
    )
    assert twice.status_code in (200, 404)  # the framework's pick of the two, as before
    assert seen == []
    # The boundary still refuses control characters before either lane.
    nul = await client.get("/api/v1/complaints/%00abc", headers=h)
    assert nul.status_code == 422 and seen == []


def test_every_get_route_under_a_hot_prefix_is_a_hot_routes_twin(app: FastAPI) -> None:
    """A GET route added later at /complaints/{x} or /track/{x} would be
    shadowed by the hot lane: this names the only ones there may be. Deeper
    paths (…/{id}/supplements) never reach it: it refuses a "/"."""
    prefixes = tuple(r.prefix for r in complaints_router.hot_routes(API_PREFIX))
    found = {
        path: route.endpoint
        for path, route in api_routes(app)
        if "GET" in route.methods
        and path.startswith(prefixes)
        and "/" not in path[len(next(p for p in prefixes if path.startswith(p))) :]
    }
    assert found == {
        f"{API_PREFIX}/complaints/{{complaint_id}}": complaints_router.get_complaint,
        f"{API_PREFIX}/complaints/mine": complaints_router.my_complaints,  # refused by name
        f"{API_PREFIX}/track/{{tracking_no}}": complaints_router.track,
    }


@pytest.mark.parametrize(
    ("rest", "query", "expected"),
    [
        ("f" * 32, b"", {"complaint_id": "f" * 32}),
        ("x", b"", {"complaint_id": "x"}),
        ("a" * 64, b"", {"complaint_id": "a" * 64}),
        ("a" * 65, b"", None),
        ("", b"", None),
        ("mine", b"", None),
        ("abc/supplements", b"", None),
        ("监督" * 32, b"", {"complaint_id": "监督" * 32}),
    ],
)
def test_the_own_case_matcher(rest: str, query: bytes, expected: Any) -> None:
    scope = {"query_string": query}
    assert complaints_router._own_case(rest, scope) == expected


@pytest.mark.parametrize(
    ("rest", "query", "expected"),
    [
        ("DZ20261205-0001", b"query_code=ABCD2345", ("DZ20261205-0001", "ABCD2345")),
        ("DZ20261205-0001", b"query_code=ABC", None),
        ("DZ20261205-0001", b"query_code=" + b"A" * 17, None),
        ("DZ20261205-0001", b"", None),
        ("DZ20261205-0001", b"query_code=ABCD&query_code=EFGH", None),
        ("DZ20261205-0001", b"other=1&query_code=ABCD", ("DZ20261205-0001", "ABCD")),
        # Four characters, as FastAPI counts them (not bytes).
        (
            "DZ20261205-0001",
            b"query_code=%E7%9B%91%E7%9D%A3%E4%B8%80%E7%82%B9",
            ("DZ20261205-0001", "监督一点"),
        ),
        ("DZ20261205-0001", b"query_code=%E7%9B%91%E7%9D%A3%E4%B8%80", None),
        ("DZ20261205-0001", b"query_code=%E7%9B%91%E7%9D%A3AB", ("DZ20261205-0001", "监督AB")),
        ("DZ20", b"query_code=ABCD", None),
        ("D" * 25, b"query_code=ABCD", None),
        ("DZ2026/1205", b"query_code=ABCD", None),
    ],
)
def test_the_tracked_case_matcher(rest: str, query: bytes, expected: Any) -> None:
    found = complaints_router._tracked_case(rest, {"query_string": query})
    if expected is None:
        assert found is None
    else:
        assert found == {"tracking_no": expected[0], "query_code": expected[1]}


async def test_errors_in_the_hot_lane_are_rendered_as_anywhere_else(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AppError by the app's handler; a database that is down is a 503 and
    a bug a 500 with the error shape, by the boundary, as on the router."""
    h, named, _ = await file_two(client)
    url = f"/api/v1/complaints/{named['id']}"
    seen = served_hot(monkeypatch)

    async def down(*a: Any, **k: Any) -> Any:
        raise DatabaseUnavailable("数据库暂时不可用")

    monkeypatch.setattr(service, "detail", down)
    resp = await client.get(url, headers=h)
    assert resp.status_code == 503 and resp.json()["error"] == "database_unavailable"

    async def dropped(*a: Any, **k: Any) -> Any:
        raise sa_exc.InterfaceError("SELECT", {}, ConnectionResetError("connection lost"))

    monkeypatch.setattr(service, "detail", dropped)
    resp = await client.get(url, headers=h)
    assert resp.status_code == 503, resp.text

    async def bug(*a: Any, **k: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "detail", bug)
    resp = await client.get(url, headers=h)
    assert resp.status_code == 500 and resp.json()["error"] == "internal_error"
    assert "a bug" not in resp.text
    assert len(seen) == 3
