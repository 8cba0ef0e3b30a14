"""The push route itself: WeChat's signature, its handshake, and hostile bodies.

Nothing here may answer 5xx or change a row unless the signature verifies
and the body names a trace id we wait for.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.core.storage.local import LocalMediaStore
from app.wechat.client import message_signature
from tests import mediafiles
from tests.fake_wechat import FakeWeChat
from tests.moderation.helpers import (
    EVENTS,
    TOKEN,
    checks_of,
    enable,
    media_row,
    push,
    tick,
)
from tests.workflow.helpers import citizen

pytestmark = pytest.mark.usefixtures("seeded")


def signed(token: str = TOKEN) -> dict[str, str]:
    timestamp, nonce = "1764748800", "n0nce"
    return {
        "signature": message_signature(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }


async def waiting_image(
    app: FastAPI,
    client: AsyncClient,
    store: LocalMediaStore,
    clock: FixedClock,
    wechat: FakeWeChat,
    name: str,
) -> tuple[str, dict[str, Any]]:
    """An uploaded image submitted to WeChat: (media id, the push WeChat will send)."""
    await enable(app)
    r = await citizen(client, name)
    resp = await client.post(
        "/api/v1/media",
        headers=r,
        data={"kind": "image"},
        files={"file": ("f", mediafiles.png())},
    )
    await tick(app, store, clock)
    return str(resp.json()["id"]), wechat.pending_pushes.pop()


class TestHandshake:
    async def test_a_valid_signature_echoes(self, app: FastAPI, client: AsyncClient) -> None:
        await enable(app)
        resp = await client.get(EVENTS, params={**signed(), "echostr": "echo-123"})
        assert resp.status_code == 200 and resp.text == "echo-123"

    @pytest.mark.parametrize(
        "params",
        [
            {**signed("another-token"), "echostr": "x"},
            {"timestamp": "1", "nonce": "2", "echostr": "x"},
            {"signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "x"},
            {"signature": "é" * 40, "timestamp": "1", "nonce": "2"},
        ],
    )
    async def test_a_forged_signature_is_403(
        self, app: FastAPI, client: AsyncClient, params: dict[str, str]
    ) -> None:
        await enable(app)
        resp = await client.get(EVENTS, params=params)
        assert resp.status_code == 403 and resp.json()["error"] == "bad_signature"

    async def test_without_a_configured_token_everything_is_refused(
        self, client: AsyncClient
    ) -> None:
        # The suite's settings configure no message token: a signature over "" is no key.
        for token in ("", TOKEN):
            resp = await client.get(EVENTS, params={**signed(token), "echostr": "x"})
            assert resp.status_code == 403
        resp = await client.post(EVENTS, params=signed(""), content=b"{}")
        assert resp.status_code == 403


async def test_an_xml_push_is_read_like_json(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    media_id, event = await waiting_image(app, client, local_store, clock, wechat, "cb.xml")
    event = wechat.push_event(event["trace_id"], "review")
    resp = await push(client, event, fmt="xml")
    assert resp.status_code == 200 and resp.text == "success"
    row = await media_row(connection, media_id)
    assert row.moderation == "review" and row.moderation_label == 20002


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b"<xml><MsgType>event</MsgType><Event>wxa_media_check</Event><trace_id>&c;</trace_id></xml>"
)
BAD_BODIES: dict[str, tuple[bytes, int]] = {
    "malformed json": (b'{"MsgType": "event", ', 400),
    "json array": (b"[1, 2, 3]", 400),
    "json NaN": (b'{"MsgType": "event", "Event": "wxa_media_check", "trace_id": NaN}', 400),
    "deep json": (b"[" * 20_000 + b"]" * 20_000, 400),
    "malformed xml": (b"<xml><MsgType>event</MsgType><Event>", 400),
    "xml entity bomb": (BOMB, 400),
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><trace_id>&e;</trace_id></xml>",
        400,
    ),
    "not utf-8": (b"\xff\xfe{\x00}\x00", 400),
    "neither": (b"MsgType=event", 400),
    "empty": (b"", 400),
    "no trace id": (b'{"MsgType": "event", "Event": "wxa_media_check"}', 400),
    "trace id not text": (b'{"MsgType": "event", "Event": "wxa_media_check", "trace_id": 7}', 400),
    "huge trace id": (
        json.dumps(
            {"MsgType": "event", "Event": "wxa_media_check", "trace_id": "t" * 500}
        ).encode(),
        400,
    ),
    "another event": (b'{"MsgType": "event", "Event": "subscribe_msg_popup_event"}', 200),
    "unknown trace id": (
        b'{"MsgType": "event", "Event": "wxa_media_check", "trace_id": "nobody",'
        b' "result": {"suggest": "risky", "label": 20001}}',
        200,
    ),
    "too large": (b'{"pad": "' + b"x" * 70_000 + b'"}', 413),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_hostile_bodies_get_4xx_and_change_nothing(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
    name: str,
) -> None:
    media_id, _ = await waiting_image(
        app, client, local_store, clock, wechat, f"cb.bad.{len(name)}"
    )
    before = [(c.state, c.verdict, c.trace_id) for c in await checks_of(connection)]
    body, status = BAD_BODIES[name]
    resp = await client.post(
        EVENTS, params=signed(), content=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == status, resp.text
    assert [(c.state, c.verdict, c.trace_id) for c in await checks_of(connection)] == before
    assert (await media_row(connection, media_id)).moderation == "checking"


async def test_a_push_wechat_could_not_judge_is_submitted_again(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    media_id, event = await waiting_image(app, client, local_store, clock, wechat, "cb.errcode")
    resp = await push(client, {**event, "errcode": 87014, "result": {}})
    assert resp.status_code == 200
    [part] = await checks_of(connection)
    assert part.state == "due" and part.trace_id is None
    assert (await tick(app, local_store, clock)).submitted == 1
    assert (await media_row(connection, media_id)).moderation == "checking"
