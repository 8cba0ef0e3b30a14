"""Residents' media through mediaCheckAsync v2 and WeChat's pushed verdict.

An upload waits in ``checking``: withheld from the case file, queue and
dossier until the push says pass (shown), review (shown with a flag) or risky
(withheld, recorded, the resident told, never attachable). Video goes as key
frames plus its sound track; the push is delivered through the real route.
"""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.core.storage.local import LocalMediaStore
from tests import mediafiles
from tests.console.helpers import signed_in
from tests.fake_wechat import FakeWeChat
from tests.moderation.helpers import (
    checks_of,
    content_calls,
    deliver_all,
    enable,
    media_row,
    push,
    tick,
)
from tests.stats.scenario import staff
from tests.workflow.helpers import case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
SUBMIT = "/wxa/media_check_async"


async def upload(client: AsyncClient, h: dict[str, str], data: bytes, kind: str) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/media", headers=h, data={"kind": kind}, files={"file": ("f", data)}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def dossier_media(client: AsyncClient, h: dict[str, str], cid: str) -> list[str]:
    resp = await client.get(f"/api/v1/staff/complaints/{cid}/dossier.zip", headers=h)
    assert resp.status_code == 200, resp.text
    names = zipfile.ZipFile(io.BytesIO(resp.content)).namelist()
    return [n for n in names if n.startswith("media/")]


@pytest.mark.parametrize("verdict", ["pass", "review", "risky"])
async def test_an_image_waits_in_checking_until_the_signed_push(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
    verdict: str,
) -> None:
    await enable(app)
    s, r = await staff(client, connection), await citizen(client, f"m.img.{verdict}")
    data = mediafiles.png()
    up = await upload(client, r, data, "image")
    assert up["moderation"] == "checking" and "内容安全检测" in up["moderation_note"]
    cid = str((await file_case(client, r, media_ids=[up["id"]]))["id"])

    held = await case(client, s.zhang, cid)
    assert held["media"] == [] and held["media_withheld"] == 1
    assert await dossier_media(client, s.zhang, cid) == []

    wechat.media_verdicts.append(verdict)
    result = await tick(app, local_store, clock)
    assert result.submitted == 1 and result.failed == 0
    [sent] = content_calls(wechat, SUBMIT)
    assert sent["version"] == 2 and sent["media_type"] == 2 and sent["scene"] == 3
    assert sent["openid"] == f"openid-m.img.{verdict}"
    # The link WeChat fetches serves exactly the stored image.
    fetched = await client.get(sent["media_url"].replace("http://testserver", ""))
    assert (
        fetched.status_code == 200
        and fetched.content
        == (await client.get(up["url"].replace("http://testserver", ""))).content
    )
    [part] = await checks_of(connection, "media:")
    assert part.state == "submitted" and part.trace_id in wechat.media_checks

    [event] = wechat.pending_pushes
    forged = await push(client, event, token="not-the-token")
    assert forged.status_code == 403 and forged.json()["error"] == "bad_signature"
    assert (await media_row(connection, up["id"])).moderation == "checking"
    assert (await case(client, s.zhang, cid))["media_withheld"] == 1

    await deliver_all(client, wechat)
    decided = await media_row(connection, up["id"])
    assert decided.moderation == verdict
    [part] = await checks_of(connection, "media:")
    first_decision = (part.state, part.verdict, part.decided_at, part.openid_sealed)
    assert first_decision[:2] == ("done", verdict) and part.openid_sealed is None

    # WeChat may push twice: the replay changes nothing.
    replay = await push(client, wechat.push_event(str(part.trace_id), "pass"))
    assert replay.status_code == 200 and replay.text == "success"
    [part] = await checks_of(connection, "media:")
    assert (part.state, part.verdict, part.decided_at, part.openid_sealed) == first_decision
    assert (await media_row(connection, up["id"])).moderation == verdict

    shown = await case(client, s.zhang, cid)
    mine = (await client.get(f"/api/v1/complaints/{cid}", headers=r)).json()["media"]
    if verdict == "risky":
        assert shown["media"] == [] and shown["media_withheld"] == 1
        assert await dossier_media(client, s.zhang, cid) == []
        assert mine[0]["url"] is None and mine[0]["moderation"] == "risky"
        assert "未通过内容安全检测" in mine[0]["moderation_note"]
        own = (await client.get(f"/api/v1/media/{up['id']}", headers=r)).json()
        assert own["url"] is None and own["moderation"] == "risky"
    else:
        assert [m["moderation"] for m in shown["media"]] == [verdict]
        assert shown["media_withheld"] == 0
        assert len(await dossier_media(client, s.zhang, cid)) == 1
        assert mine[0]["url"] and mine[0]["moderation"] == verdict


async def test_risky_media_cannot_be_attached(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app)
    r = await citizen(client, "m.attach")
    up = await upload(client, r, mediafiles.png(), "image")
    wechat.media_verdicts.append("risky")
    await tick(app, local_store, clock)
    await deliver_all(client, wechat)
    resp = await client.post(
        "/api/v1/complaints",
        headers=r,
        json={
            "item_code": "0101",
            "region_code": "511702005001",
            "content": "村里的财务收支好几个季度都没有公开了。",
            "media_ids": [up["id"]],
            "anonymous": True,
        },
    )
    assert resp.status_code == 409 and "内容安全检测" in resp.json()["detail"]


async def test_a_video_goes_as_key_frames_and_its_sound(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app, content_check_video_frames=3)
    s, r = await staff(client, connection), await citizen(client, "m.video")
    up = await upload(client, r, mediafiles.mov_mpeg4(seconds=3.0), "video")
    cid = str((await file_case(client, r, media_ids=[up["id"]]))["id"])
    result = await tick(app, local_store, clock)
    assert result.prepared == 1 and result.failed == 0
    sent = content_calls(wechat, SUBMIT)
    types = sorted(c["media_type"] for c in sent)
    assert types.count(1) == 1 and 2 <= types.count(2) <= 3  # sound + key frames
    assert result.submitted == len(sent)
    parts = await checks_of(connection, f"media:{up['id']}")
    assert {p.part for p in parts} >= {"audio", "frame-0", "frame-1"}
    row = await media_row(connection, up["id"])
    assert row.derivatives and "check-audio" in row.derivatives
    for p in parts:  # each part is what it claims: JPEG frames, an .m4a sound track
        url = wechat.media_checks[str(p.trace_id)]["media_url"]
        head = (await client.get(url.replace("http://testserver", ""))).content[:12]
        assert head.startswith(b"\xff\xd8") if p.kind == "image" else b"ftyp" in head

    # One frame found risky: the whole video is withheld.
    events = list(wechat.pending_pushes)
    wechat.pending_pushes.clear()
    events[0] = wechat.push_event(events[0]["trace_id"], "risky")
    for event in events[:1]:
        assert (await push(client, event)).status_code == 200
    assert (await media_row(connection, up["id"])).moderation == "risky"
    assert (await case(client, s.zhang, cid))["media_withheld"] == 1


async def test_every_part_must_pass_before_staff_see_a_video(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app, content_check_video_frames=2)
    s, r = await staff(client, connection), await citizen(client, "m.video2")
    up = await upload(client, r, mediafiles.mov_mpeg4(seconds=3.0), "video")
    cid = str((await file_case(client, r, media_ids=[up["id"]]))["id"])
    await tick(app, local_store, clock)
    first, *rest = wechat.pending_pushes
    wechat.pending_pushes[:] = rest
    assert (await push(client, first)).status_code == 200
    assert (await media_row(connection, up["id"])).moderation == "checking"
    await deliver_all(client, wechat)
    assert (await media_row(connection, up["id"])).moderation == "pass"
    assert len((await case(client, s.zhang, cid))["media"]) == 1


@pytest.mark.parametrize(("make", "converted"), [(mediafiles.amr, True), (mediafiles.wav, False)])
async def test_voice_is_checked_as_audio(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
    make: Any,
    converted: bool,
) -> None:
    await enable(app)
    r = await citizen(client, f"m.voice.{converted}")
    up = await upload(client, r, make(), "voice")
    await tick(app, local_store, clock)
    [sent] = content_calls(wechat, SUBMIT)
    assert sent["media_type"] == 1
    [part] = await checks_of(connection, f"media:{up['id']}")
    row = await media_row(connection, up["id"])
    assert (part.object_key != row.storage_key) is converted
    await deliver_all(client, wechat)
    assert (await media_row(connection, up["id"])).moderation == "pass"


async def test_wechat_down_the_worker_resubmits_with_backoff(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app, content_check_backoff_seconds=30)
    r = await citizen(client, "m.down")
    up = await upload(client, r, mediafiles.png(), "image")
    wechat.content_down = True
    assert (await tick(app, local_store, clock)).failed == 1
    [part] = await checks_of(connection, "media:")
    assert part.state == "due" and part.attempts == 1
    assert part.next_at == clock.now() + timedelta(seconds=30)
    wechat.content_down = False
    assert (await tick(app, local_store, clock)).submitted == 0  # backing off
    clock.advance(timedelta(seconds=31))
    assert (await tick(app, local_store, clock)).submitted == 1
    await deliver_all(client, wechat)
    assert (await media_row(connection, up["id"])).moderation == "pass"


async def test_a_push_that_never_comes_is_submitted_again(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app, content_check_result_minutes=40)
    r = await citizen(client, "m.lost")
    up = await upload(client, r, mediafiles.png(), "image")
    await tick(app, local_store, clock)
    lost = wechat.pending_pushes.pop()
    clock.advance(timedelta(minutes=41))
    assert (await tick(app, local_store, clock)).submitted == 1
    assert len(content_calls(wechat, SUBMIT)) == 2
    # The first submission's late push is for a trace id no longer waited for.
    assert (await push(client, lost)).status_code == 200
    assert (await media_row(connection, up["id"])).moderation == "checking"
    await deliver_all(client, wechat)
    assert (await media_row(connection, up["id"])).moderation == "pass"


async def test_staff_uploads_and_content_security_off_are_not_held(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection
) -> None:
    r = await citizen(client, "m.off")
    up = await upload(client, r, mediafiles.png(), "image")  # content security off
    assert up["moderation"] is None and up["moderation_note"] is None
    assert await checks_of(connection) == []


async def test_the_console_flags_review_and_counts_what_it_withholds(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app)
    await staff(client, connection)
    r = await citizen(client, "m.console")
    held = await upload(client, r, mediafiles.png(), "image")
    flagged = await upload(client, r, mediafiles.png((32, 32)), "image")
    body = {"media_ids": [held["id"], flagged["id"]], "content": "村务公开栏空了半年 #review#"}
    cid = str((await file_case(client, r, **body))["id"])
    wechat.media_verdicts[:] = ["risky", "review"]
    await tick(app, local_store, clock)
    await deliver_all(client, wechat)
    await signed_in(client, "st.zhang")
    page = (await client.get(f"/console/complaints/{cid}")).text
    assert page.count("内容需复核") == 2  # the case's text and one image
    assert "另有 1 个附件正在进行内容安全检测或未通过检测" in page
    queue = (await client.get("/console/queue")).text
    assert "内容需复核" in queue


async def test_a_direct_upload_is_held_once_completed(
    app: FastAPI,
    client: AsyncClient,
    connection: AsyncConnection,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(app)
    r = await citizen(client, "m.direct")
    data = mediafiles.png()
    t = (
        await client.post(
            "/api/v1/media/upload-tickets",
            headers=r,
            json={"kind": "image", "content_type": "image/png", "size": len(data)},
        )
    ).json()
    sent = await client.post(
        t["url"].replace("http://testserver", ""), data=t["fields"], files={"file": ("i", data)}
    )
    assert sent.status_code == 204, sent.text
    done = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=r)
    assert done.status_code == 200 and done.json()["moderation"] == "checking", done.text
    again = await client.post(f"/api/v1/media/{t['media_id']}/complete", headers=r)
    assert again.status_code == 200
    assert len(await checks_of(connection, f"media:{t['media_id']}")) == 1  # held once
    assert (await tick(app, local_store, clock)).submitted == 1
    await deliver_all(client, wechat)
    assert (await media_row(connection, t["media_id"])).moderation == "pass"
