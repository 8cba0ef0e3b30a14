"""Residents' text through msgSecCheck v2: filing, supplements, rating comments.

risky → 422 in Chinese, nothing written; review → accepted and the case
flagged for staff; pass → accepted. WeChat down → accepted, flagged
``checking``, and the worker checks it again later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.core.storage.local import LocalMediaStore
from tests.fake_wechat import REVIEW_MARK, RISKY_MARK, FakeWeChat
from tests.moderation.helpers import (
    checks_of,
    complaint_row,
    content_calls,
    counts,
    enable,
    tick,
)
from tests.stats.scenario import Staff, resolved_case, staff
from tests.workflow.helpers import case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
TEXT = "村里的财务收支好几个季度都没有公开了，公示栏一直是空的。"


def marked(verdict: str) -> str:
    return {"pass": TEXT, "review": TEXT + REVIEW_MARK, "risky": TEXT + RISKY_MARK}[verdict]


async def file_route(
    client: AsyncClient, s: Staff, r: dict[str, str], text: str
) -> tuple[Response, str | None]:
    resp = await client.post(
        "/api/v1/complaints",
        headers=r,
        json={
            "item_code": "0101",
            "region_code": "511702005001",
            "content": text,
            "anonymous": False,
            "contact_name": "李大姐",
            "contact_phone": "13900001111",
        },
    )
    return resp, resp.json().get("id") if resp.status_code == 201 else None


async def supplement_route(
    client: AsyncClient, s: Staff, r: dict[str, str], text: str
) -> tuple[Response, str | None]:
    cid = str((await file_case(client, r))["id"])
    resp = await client.post(
        f"/api/v1/complaints/{cid}/supplements", headers=r, json={"content": text}
    )
    return resp, cid


async def rating_route(
    client: AsyncClient, s: Staff, r: dict[str, str], text: str
) -> tuple[Response, str | None]:
    cid = await resolved_case(client, s, r)
    resp = await client.post(
        f"/api/v1/complaints/{cid}/rating",
        headers=r,
        json={"score": 2, "satisfaction": "basic", "comment": text},
    )
    return resp, cid


Route = Callable[[AsyncClient, Staff, dict[str, str], str], Awaitable[tuple[Response, Any]]]
ROUTES: dict[str, tuple[Route, int]] = {
    "filing": (file_route, 3),  # msgSecCheck scene: forum
    "supplement": (supplement_route, 3),
    "rating": (rating_route, 2),  # a comment
}


@pytest.mark.parametrize("route", list(ROUTES))
class TestEachRoute:
    async def test_pass_is_accepted_unflagged(
        self,
        app: FastAPI,
        client: AsyncClient,
        connection: AsyncConnection,
        wechat: FakeWeChat,
        route: str,
    ) -> None:
        await enable(app)
        s, r = await staff(client, connection), await citizen(client, f"t.pass.{route}")
        call, scene = ROUTES[route]
        resp, cid = await call(client, s, r, marked("pass"))
        assert resp.status_code == 201, resp.text
        sent = content_calls(wechat, "/wxa/msg_sec_check")[-1]
        assert sent["version"] == 2 and sent["scene"] == scene
        assert sent["openid"] == f"openid-t.pass.{route}" and sent["content"] == marked("pass")
        assert (await case(client, s.zhang, str(cid)))["moderation"] == "pass"
        assert await checks_of(connection, "") == []  # a pass leaves only the flag

    async def test_review_is_accepted_and_flagged_for_staff(
        self,
        app: FastAPI,
        client: AsyncClient,
        connection: AsyncConnection,
        route: str,
    ) -> None:
        await enable(app)
        s, r = await staff(client, connection), await citizen(client, f"t.review.{route}")
        resp, cid = await ROUTES[route][0](client, s, r, marked("review"))
        assert resp.status_code == 201, resp.text
        file = await case(client, s.zhang, str(cid))
        assert file["moderation"] == "review"
        queue = (await client.get("/api/v1/staff/complaints", headers=s.zhang)).json()
        assert [i["moderation"] for i in queue["items"] if i["id"] == cid] == ["review"]
        [row] = await checks_of(connection, "")
        assert row.verdict == "review" and row.kind == "text" and row.complaint_id == cid
        assert row.openid_sealed is None and row.label == 20002
        target = {"filing": "complaint", "supplement": "event", "rating": "rating"}[route]
        assert row.target.startswith(f"{target}:")

    async def test_risky_is_a_chinese_422_and_nothing_is_written(
        self,
        app: FastAPI,
        client: AsyncClient,
        connection: AsyncConnection,
        route: str,
    ) -> None:
        await enable(app)
        s, r = await staff(client, connection), await citizen(client, f"t.risky.{route}")
        call = ROUTES[route][0]
        # Prepare the case first (with passing text), then count.
        if route == "filing":
            before = await counts(connection)
            resp, _ = await call(client, s, r, marked("risky"))
        else:
            before_case = await counts(connection)
            resp, cid = await call(client, s, r, marked("pass"))
            assert resp.status_code == 201
            assert (await counts(connection))["complaints"] == before_case["complaints"] + 1
            before = await counts(connection)
            path = "supplements" if route == "supplement" else "rating"
            if route == "rating":  # the case takes one rating: a fresh resolved one
                cid = await resolved_case(client, s, r)
                before = await counts(connection)
            body: dict[str, Any] = (
                {"content": marked("risky")}
                if route == "supplement"
                else {"score": 1, "satisfaction": "unsatisfied", "comment": marked("risky")}
            )
            resp = await client.post(f"/api/v1/complaints/{cid}/{path}", headers=r, json=body)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"] == "content_risky"
        assert "违法违规" in resp.json()["detail"]
        assert await counts(connection) == before


async def test_wechat_down_filing_works_and_the_worker_checks_it_later(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app, content_check_backoff_seconds=60)
    s, r = await staff(client, connection), await citizen(client, "t.down")
    wechat.content_down = True
    resp, cid = await file_route(client, s, r, marked("review"))
    assert resp.status_code == 201, resp.text
    assert (await case(client, s.zhang, str(cid)))["moderation"] == "checking"
    [due] = await checks_of(connection, "complaint:")
    assert due.state == "due" and due.openid_sealed  # sealed, never the openid itself
    assert "openid-t.down" not in due.openid_sealed

    # Still down: one more attempt, then backing off.
    result = await tick(app, local_store, clock)
    assert result.texts == 0 and result.failed == 1
    [due] = await checks_of(connection, "complaint:")
    assert (
        due.state == "due"
        and due.attempts == 1
        and due.next_at == clock.now() + timedelta(seconds=60)
    )
    assert (await tick(app, local_store, clock)).failed == 0  # not due yet

    wechat.content_down = False
    clock.advance(timedelta(seconds=61))
    result = await tick(app, local_store, clock)
    assert result.texts == 1
    [done] = await checks_of(connection, "complaint:")
    assert done.state == "done" and done.verdict == "review" and done.openid_sealed is None
    assert (await complaint_row(connection, str(cid))).moderation == "review"


async def test_a_late_risky_verdict_flags_the_case_it_can_no_longer_refuse(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app)
    s, r = await staff(client, connection), await citizen(client, "t.late")
    wechat.content_down = True
    resp, cid = await supplement_route(client, s, r, marked("risky"))
    assert resp.status_code == 201, resp.text
    wechat.content_down = False
    assert (await tick(app, local_store, clock)).texts == 2  # the filing's and the supplement's
    assert (await case(client, s.zhang, str(cid)))["moderation"] == "risky"
    verdicts = {c.target.split(":")[0]: c.verdict for c in await checks_of(connection)}
    assert verdicts == {"complaint": "pass", "event": "risky"}


async def test_after_the_last_attempt_staff_review_it(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app, content_check_max_attempts=2, content_check_backoff_seconds=1)
    s, r = await staff(client, connection), await citizen(client, "t.giveup")
    wechat.content_down = True
    resp, cid = await file_route(client, s, r, marked("pass"))
    assert resp.status_code == 201
    for _ in range(2):
        await tick(app, local_store, clock)
        clock.advance(timedelta(seconds=5))
    [row] = await checks_of(connection, "complaint:")
    assert row.state == "done" and row.verdict == "review" and row.attempts == 2
    assert (await case(client, s.zhang, str(cid)))["moderation"] == "review"


async def test_off_without_wechat_credentials_nothing_is_sent(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, wechat: FakeWeChat
) -> None:
    await enable(app)
    s, r = await staff(client, connection), await citizen(client, "t.off")
    # The embedded default: no WeChat credentials, so no content security.
    app.state.settings = app.state.settings.model_copy(update={"wechat_appid": None})
    resp, cid = await file_route(client, s, r, marked("risky"))
    assert resp.status_code == 201
    assert content_calls(wechat, "/wxa/msg_sec_check") == []
    assert (await case(client, s.zhang, str(cid)))["moderation"] is None


async def test_a_logged_out_resident_asks_wechat_nothing_and_writes_nothing(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection, wechat: FakeWeChat
) -> None:
    """The token's session is checked before WeChat judges the text (it is
    judged before the writer session begins now): a dead session is a 401
    that spends none of the mini-program's check quota and writes nothing."""
    await enable(app)
    r = await citizen(client, "t.out")
    cid = (await file_case(client, r))["id"]
    assert (await client.post("/api/v1/auth/logout", headers=r)).status_code == 204
    asked, before = len(content_calls(wechat, "/wxa/msg_sec_check")), await counts(connection)
    posts = [
        (
            "/api/v1/complaints",
            {
                "item_code": "0101",
                "region_code": "511702005001",
                "content": TEXT,
                "anonymous": True,
            },
        ),
        (f"/api/v1/complaints/{cid}/supplements", {"content": TEXT}),
        (
            f"/api/v1/complaints/{cid}/rating",
            {"score": 2, "satisfaction": "basic", "comment": TEXT},
        ),
    ]
    for path, body in posts:
        resp = await client.post(path, headers=r, json=body)
        assert resp.status_code == 401, (path, resp.text)
    assert len(content_calls(wechat, "/wxa/msg_sec_check")) == asked
    assert await counts(connection) == before
