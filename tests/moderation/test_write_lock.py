"""The content-check worker holds no transaction while it waits.

On the embedded default (SQLite) every writer's transaction holds the
database's write lock, and `ydt worker` runs beside `ydt serve` in another
process: a worker that kept its transaction open while it cut a video into
parts or waited for WeChat held every resident's filing and every cadre's
action for as long (seconds; a WeChat timeout). Each slow step here probes
the database the way another process would (tests/write_lock.py), while the
worker is in the middle of that step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.clock import FixedClock
from app.core.storage.local import LocalMediaStore
from app.moderation import frames, worker
from tests import mediafiles
from tests.fake_wechat import FakeWeChat
from tests.moderation.helpers import enable, tick
from tests.workflow.live import VILLAGE, live, new_resident
from tests.write_lock import database_free, http

__all__ = ["http", "live"]  # the live app's fixtures, used by name

pytestmark = [
    pytest.mark.usefixtures("seeded"),
    pytest.mark.parametrize("engine", ["sqlite"], indirect=True),
]


def prober(live: FastAPI, found: list[bool]) -> Callable[[], None]:
    """A probe to call while the worker waits: it records whether another
    connection could take the write lock meanwhile."""
    return lambda: found.append(database_free(live))


@dataclass
class Checks:
    """A live app with content security on, its WeChat, and the worker's round."""

    live: FastAPI
    http: AsyncClient
    wechat: FakeWeChat
    store: LocalMediaStore
    clock: FixedClock
    found: list[bool] = field(default_factory=list)

    def probe(self) -> Callable[[], None]:
        return prober(self.live, self.found)

    async def tick(self) -> worker.ModerationTick:
        return await tick(self.live, self.store, self.clock)

    async def upload(self, data: bytes, kind: str) -> dict[str, Any]:
        resp = await self.http.post(
            "/api/v1/media",
            headers=await new_resident(self.http),
            data={"kind": kind},
            files={"file": ("f", data)},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]


@pytest.fixture
async def checks(
    live: FastAPI,
    http: AsyncClient,
    wechat: FakeWeChat,
    local_store: LocalMediaStore,
    clock: FixedClock,
) -> Checks:
    await enable(live)
    return Checks(live, http, wechat, local_store, clock)


async def test_no_write_lock_while_wechat_judges_an_image(checks: Checks) -> None:
    await checks.upload(mediafiles.png(), "image")
    checks.wechat.on_media_check = checks.probe()
    result = await checks.tick()
    assert result.submitted >= 1 and result.failed == 0
    assert checks.found and all(checks.found), checks.found


async def test_no_write_lock_while_a_video_is_cut_into_parts(
    checks: Checks, monkeypatch: pytest.MonkeyPatch
) -> None:
    await checks.upload(mediafiles.mov_mpeg4(seconds=2.0), "video")
    probe, cut = checks.probe(), frames.key_frames

    def cut_and_probe(*args: Any, **kwargs: Any) -> Any:
        probe()  # on the thread the worker cuts on, while it cuts
        return cut(*args, **kwargs)

    monkeypatch.setattr(frames, "key_frames", cut_and_probe)
    result = await checks.tick()
    assert result.prepared == 1 and result.failed == 0
    assert checks.found == [True]


async def test_no_write_lock_while_wechat_judges_a_deferred_text(checks: Checks) -> None:
    checks.wechat.content_down = True  # judged later, by the worker
    resp = await checks.http.post(
        "/api/v1/complaints",
        headers=await new_resident(checks.http),
        json={
            "item_code": "0101",
            "region_code": VILLAGE,
            "content": "村里账目一直不公开。",
            "anonymous": True,
        },
    )
    assert resp.status_code == 201, resp.text
    checks.wechat.content_down = False
    checks.wechat.on_text_check = checks.probe()
    result = await checks.tick()
    assert result.texts == 1 and result.failed == 0
    assert checks.found == [True]
