"""The content-check worker holds no transaction while it waits.

On the embedded default (SQLite) every writer's transaction holds the
database's write lock, and `ydt worker` runs beside `ydt serve` in another
process: a worker that kept its transaction open while it cut a video into
parts or waited for WeChat held every resident's filing and every cadre's
action for as long (seconds; a WeChat timeout). Each slow step here probes
the database the way another process would, with its own connection asking
for the write lock, while the worker is in the middle of that step.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.clock import FixedClock
from app.core.storage.local import LocalMediaStore
from app.moderation import frames
from tests import mediafiles
from tests.fake_wechat import FakeWeChat
from tests.moderation.helpers import enable, tick
from tests.workflow.live import VILLAGE, http, live, new_resident

__all__ = ["http", "live"]  # the live app's fixtures, used by name

pytestmark = [
    pytest.mark.usefixtures("seeded"),
    pytest.mark.parametrize("engine", ["sqlite"], indirect=True),
]


def prober(live: FastAPI, found: list[bool]) -> Callable[[], None]:
    """Ask for the write lock from a connection of another's (waiting half a
    second, far longer than any of the worker's short writes)."""
    path = str(live.state.engine.url.database)

    def probe() -> None:
        conn = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            found.append(True)
        except sqlite3.OperationalError:
            found.append(False)
        finally:
            conn.close()

    return probe


async def upload(http: AsyncClient, h: dict[str, str], data: bytes, kind: str) -> dict[str, Any]:
    resp = await http.post(
        "/api/v1/media", headers=h, data={"kind": kind}, files={"file": ("f", data)}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_no_write_lock_while_wechat_judges_an_image(
    live: FastAPI,
    http: AsyncClient,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(live)
    await upload(http, await new_resident(http), mediafiles.png(), "image")
    found: list[bool] = []
    wechat.on_media_check = prober(live, found)
    result = await tick(live, local_store, clock)
    assert result.submitted >= 1 and result.failed == 0
    assert found and all(found), found


async def test_no_write_lock_while_a_video_is_cut_into_parts(
    live: FastAPI,
    http: AsyncClient,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await enable(live, content_check_video_frames=2)
    await upload(http, await new_resident(http), mediafiles.mov_mpeg4(seconds=2.0), "video")
    found: list[bool] = []
    probe, cut = prober(live, found), frames.key_frames

    def cut_and_probe(*args: Any, **kwargs: Any) -> Any:
        probe()  # on the thread the worker cuts on, while it cuts
        return cut(*args, **kwargs)

    monkeypatch.setattr(frames, "key_frames", cut_and_probe)
    result = await tick(live, local_store, clock)
    assert result.prepared == 1 and result.failed == 0
    assert found == [True]


async def test_no_write_lock_while_wechat_judges_a_deferred_text(
    live: FastAPI,
    http: AsyncClient,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> None:
    await enable(live)
    wechat.content_down = True  # judged later, by the worker
    resp = await http.post(
        "/api/v1/complaints",
        headers=await new_resident(http),
        json={
            "item_code": "0101",
            "region_code": VILLAGE,
            "content": "村里账目一直不公开。",
            "anonymous": True,
        },
    )
    assert resp.status_code == 201, resp.text
    wechat.content_down = False
    found: list[bool] = []
    wechat.on_text_check = prober(live, found)
    result = await tick(live, local_store, clock)
    assert result.texts == 1 and result.failed == 0
    assert found == [True]
