"""The residents' two hottest reads and the filing served beside the routing
(app/core/hotpath.py).

The hot lane must take exactly the requests its FastAPI twin accepts as they
are, answer them byte for byte as the twin does, and leave every other
request (bad input included) to the framework's usual answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import exc as sa_exc

from app.complaints import router as complaints_router
from app.complaints import service
from app.core.errors import DatabaseUnavailable
from app.core.hotpath import HotRoute, HotRoutes
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


# The filing (POST /complaints): a body read whole, taken only when it is what
# the route takes as it is.

FILE = "/api/v1/complaints"


def masked(resp: Any) -> tuple[int, str]:
    """The answer with what differs between two filings (the case's id, number
    and query code) masked, so two lanes' answers compare byte for byte."""
    text = resp.text
    if resp.status_code == 201:
        found = resp.json()
        for field in ("id", "tracking_no", "query_code"):
            if found.get(field):
                text = text.replace(found[field], f"<{field}>")
    return resp.status_code, text


async def filings(client: AsyncClient, tag: str) -> list[Any]:
    """One of each answer a well-formed filing can get."""
    named, other = await login(client, f"{tag}-named"), await login(client, f"{tag}-other")
    out = [
        await client.post(FILE, json=payload(), headers=named | {"Idempotency-Key": f"{tag}-1"}),
        await client.post(FILE, json=payload(), headers=named | {"Idempotency-Key": f"{tag}-1"}),
        await client.post(
            FILE,
            json=payload(content="换了内容的同一个键。"),
            headers=named | {"Idempotency-Key": f"{tag}-1"},
        ),
        await client.post(
            FILE, json=payload(anonymous=True, contact_name=None, contact_phone=None), headers=other
        ),
        await client.post(FILE, json=payload(), headers={}),
        await client.post(FILE, json=payload(), headers={"Authorization": "Bearer forged"}),
        await client.post(FILE, json=payload(item_code="9999"), headers=other),
    ]
    for _ in range(10):  # the resident's hourly limit, then a 429
        out.append(await client.post(FILE, json=payload(), headers=other))
    return out


async def test_the_filing_lane_answers_as_the_route_does(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        seen = served_hot(m)
        hot = await filings(client, "hot")
        assert seen.count(FILE) == len(hot) and len(seen) == len(hot)
    with monkeypatch.context() as m:
        no_hot_lane(m)
        routed = await filings(client, "routed")
    statuses = [r.status_code for r in hot]
    assert statuses[:6] == [201, 201, 409, 201, 401, 401], [r.text for r in hot]
    assert statuses[-1] == 429 and statuses[6] in (404, 422), statuses
    assert hot[0].content == hot[1].content  # the retry's replay
    assert [masked(r) for r in hot] == [masked(r) for r in routed]
    for a, b in zip(hot, routed, strict=True):
        for header in ("content-type", "www-authenticate", "retry-after"):
            assert a.headers.get(header) == b.headers.get(header), header
        assert "x-request-id" in a.headers


async def test_a_body_the_route_would_not_take_as_it_is_goes_the_usual_way(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each answered by the framework, byte for byte as without the lane; a
    body sent in pieces is still taken by the lane."""
    h = await login(client, "hot-bad")
    good = json.dumps(payload()).encode()
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[bytes, dict[str, str]]] = [
        (b"", json_type),
        (b"{", json_type),  # not JSON: 422 json_invalid
        (b"[]", json_type),
        (b'{"item_code": "0101"}', json_type),  # fields missing
        (json.dumps(payload(content="\x00控制字符")).encode(), json_type),
        (json.dumps(payload(media_ids="x")).encode(), json_type),
        (b"[" * 100_000 + b"]" * 100_000, json_type),  # nesting past the parser
        (b"\xff\xfe", json_type),  # not UTF-8
        (good, {"Content-Type": "text/plain"}),
        (good, {}),  # no content type: FastAPI does not read JSON
        (good, {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"x" * (1024 * 1024 + 1), json_type),  # past the body cap: 413
    ]

    async def send_all() -> list[Any]:
        return [await client.post(FILE, content=body, headers=h | extra) for body, extra in cases]

    with monkeypatch.context() as m:
        seen = served_hot(m)
        hot = await send_all()
        assert seen == []
    with monkeypatch.context() as m:
        no_hot_lane(m)
        routed = await send_all()
    for (body, _), a, b in zip(cases, hot, routed, strict=True):
        assert (a.status_code, a.content) == (b.status_code, b.content), body[:40]
        assert a.status_code in (400, 413, 422), (body[:40], a.status_code, a.text)
    assert hot[-1].status_code == 413

    async def pieces() -> Any:
        for i in range(0, len(good), 7):
            yield good[i : i + 7]

    seen = served_hot(monkeypatch)
    chunked = await client.post(FILE, content=pieces(), headers=h | json_type)
    assert chunked.status_code == 201, chunked.text
    assert seen == [FILE]


def test_the_filing_body_parser() -> None:
    good = json.dumps(payload()).encode()
    as_json = {"headers": [(b"content-type", b"application/json")]}
    assert complaints_router._filing_body(good, as_json) is not None
    for value in (b"application/json; charset=utf-8", b"Application/JSON"):
        assert complaints_router._filing_body(good, {"headers": [(b"content-type", value)]})
    # FastAPI reads the first content type only, as this does.
    twice = {"headers": [(b"content-type", b"text/plain"), (b"content-type", b"application/json")]}
    assert complaints_router._filing_body(good, twice) is None
    for value in (b"application/jsonx", b"text/json", b"application/ld+json"):
        assert complaints_router._filing_body(good, {"headers": [(b"content-type", value)]}) is None
    assert complaints_router._filing_body(b"", as_json) is None
    assert complaints_router._filing_body(b"null", as_json) is None
    assert complaints_router._filing_body(b'{"content": 1}', as_json) is None
    assert complaints_router._filing_path("", {}) == {}
    assert complaints_router._filing_path("/x/supplements", {}) is None
    assert complaints_router._filing_path("/", {}) is None


def test_every_post_route_at_the_filing_path_is_the_lanes_twin(app: FastAPI) -> None:
    found = {
        path: route.endpoint
        for path, route in api_routes(app)
        if "POST" in route.methods and path == f"{API_PREFIX}/complaints"
    }
    assert found == {f"{API_PREFIX}/complaints": complaints_router.file_complaint}


# The lane's reading of a body, with a stand-in app behind it.


class Behind:
    """The framework's place: records what it received, answers 204."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.error: Exception | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            while True:
                message = await receive()
                self.received.append(message)
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
        except Exception as exc:
            self.error = exc
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def lane(parsed: Any) -> tuple[HotRoutes, Behind, list[Any]]:
    behind, served = Behind(), []

    async def endpoint(**kw: Any) -> Any:
        from starlette.responses import Response

        served.append(kw)
        return Response(status_code=201)

    route = HotRoute("/f", lambda rest, scope: {} if rest == "" else None, endpoint, "POST", parsed)
    return HotRoutes(behind, routes=[route]), behind, served


def post_scope() -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/f", "headers": [], "query_string": b""}


def feeding(*messages: Any, then: Exception | None = None) -> Any:
    pending = list(messages)

    async def receive() -> Any:
        if pending:
            return pending.pop(0)
        if then is not None:
            raise then
        raise AssertionError("read past the end")

    return receive


async def sink(message: Any) -> None:
    pass


async def test_what_the_lane_read_is_replayed_in_order_to_the_framework() -> None:
    parts = (
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.disconnect"},
    )
    routes, behind, served = lane(lambda body, scope: {"body": body})
    await routes(post_scope(), feeding(*parts), sink)
    assert behind.received == list(parts) and served == []

    refused = (
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
    )
    routes, behind, served = lane(lambda body, scope: None)
    await routes(post_scope(), feeding(*refused), sink)
    assert behind.received == list(refused) and served == []


async def test_an_error_reading_the_body_is_raised_again_to_the_framework() -> None:
    too_large = RuntimeError("body too large")
    first = {"type": "http.request", "body": b"ab", "more_body": True}
    routes, behind, served = lane(lambda body, scope: {"body": body})
    await routes(post_scope(), feeding(first, then=too_large), sink)
    assert behind.received == [first] and behind.error is too_large and served == []


async def test_a_body_taken_reaches_the_endpoint_whole() -> None:
    parts = (
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"bc"},
    )
    routes, behind, served = lane(lambda body, scope: {"body": body})
    await routes(post_scope(), feeding(*parts), sink)
    assert served == [{"request": served[0]["request"], "body": b"abc"}]
    assert behind.received == []
