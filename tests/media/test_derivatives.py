"""A media item's derivative entries, written by different hands, are all kept.

The playable copy (``ydt worker``'s media round), the parts a content check
cuts (the moderation round, perhaps in another worker) and a refreshed tag
found by a resident's read each add an entry to ``Media.derivatives`` after
work on a copy of the row read before it. Each writes only its own entries,
merged into the row as it is at the write (``ingest.merge_derivatives``): an
entry written back from a stale copy would drop another writer's, and the
object it named would outlive the item (cleanup deletes what the entries
name). Against a live app whose sessions really commit, on both engines.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from app.media import ingest, integrity, maintenance
from app.models import Media
from app.models.media import DeriveState
from tests import mediafiles
from tests.media.test_upload import upload
from tests.workflow.live import live, new_resident
from tests.write_lock import http

__all__ = ["http", "live"]  # the live app's fixtures, used by name

pytestmark = pytest.mark.usefixtures("seeded")


def entry(name: str, etag: str = "e1") -> dict[str, Any]:
    return {
        "key": f"media/2026/12/07/x.{name}",
        "content_type": "image/jpeg",
        "size": 10,
        "sha256": "0" * 64,
        "etag": etag,
    }


async def new_media(live: FastAPI, http: AsyncClient, derivatives: dict[str, Any]) -> str:
    status, body = await upload(http, await new_resident(http), mediafiles.png(), "image")
    assert status == 201, body
    media_id = str(body["id"])
    async with live.state.sessionmaker() as s:
        await s.execute(update(Media).where(Media.id == media_id).values(derivatives=derivatives))
        await s.commit()
    return media_id


async def stored(live: FastAPI, media_id: str) -> Media:
    async with live.state.sessionmaker() as s:
        media = await s.get(Media, media_id)
        assert media is not None
        return media


async def merged_apart(live: FastAPI, media_id: str, changed: dict[str, Any]) -> bool:
    async with live.state.sessionmaker() as s:
        kept = await ingest.merge_derivatives(s, media_id, changed)
        await s.commit()
        return kept


async def test_two_writers_each_keep_the_others_entry(live: FastAPI, http: AsyncClient) -> None:
    """The second writer waits for the first's lock, then reads the row again:
    it merges into the first's entry instead of writing back what it read."""
    media_id = await new_media(live, http, {"poster": entry("poster")})
    async with live.state.sessionmaker() as first:
        assert await ingest.merge_derivatives(
            first, media_id, {"play": entry("play")}, derive_state=DeriveState.done
        )
        second = asyncio.create_task(merged_apart(live, media_id, {"check-0": entry("check-0")}))
        await asyncio.sleep(0.3)
        assert not second.done()  # held by the first writer's lock
        await first.commit()
    assert await second
    media = await stored(live, media_id)
    assert media.derivatives == {
        "poster": entry("poster"),
        "play": entry("play"),
        "check-0": entry("check-0"),
    }
    assert media.derive_state is DeriveState.done


async def test_an_entry_is_replaced_whole_and_a_gone_item_is_left_alone(
    live: FastAPI, http: AsyncClient
) -> None:
    media_id = await new_media(live, http, {"poster": entry("poster"), "play": entry("play")})
    assert await merged_apart(live, media_id, {"play": {"key": "media/new.play"}})
    assert (await stored(live, media_id)).derivatives == {
        "poster": entry("poster"),
        "play": {"key": "media/new.play"},
    }
    assert not await merged_apart(live, "m-gone-0000", {"play": entry("play")})


async def test_a_reads_refreshed_tag_keeps_an_entry_added_since_the_read(
    live: FastAPI, http: AsyncClient
) -> None:
    """A resident's read finds the poster's tag changed (a restored backup) while
    the worker records the playable copy: the read keeps only the poster's new
    tag, and the copy stays."""
    media_id = await new_media(live, http, {"poster": entry("poster")})
    async with live.state.read_sessionmaker() as reading:
        media = await reading.get(Media, media_id)
        assert media is not None
        media.derivatives = {**(media.derivatives or {}), "poster": entry("poster", "e2")}
        found = integrity.take_found(reading, media)
    assert found == {"derivatives": {"poster": entry("poster", "e2")}}
    assert await merged_apart(live, media_id, {"play": entry("play")})  # meanwhile
    async with live.state.sessionmaker() as writing:
        await integrity.record_found(writing, media_id, found)
        await writing.commit()
    assert (await stored(live, media_id)).derivatives == {
        "poster": entry("poster", "e2"),
        "play": entry("play"),
    }


async def test_the_playable_copy_keeps_a_check_part_cut_while_it_was_made(
    live: FastAPI, http: AsyncClient
) -> None:
    """Another worker's content check records its part while this worker's
    transcoder runs (on a copy of the row read when the work was claimed):
    the playable copy is recorded beside the part, not over it."""
    status, body = await upload(http, await new_resident(http), mediafiles.amr(3.0), "voice")
    assert status == 201, body
    media_id = str(body["id"])
    assert (await stored(live, media_id)).derive_state is DeriveState.pending
    settings, store = live.state.settings, live.state.media_store
    making = asyncio.create_task(
        maintenance.derive_one(
            live.state.sessionmaker, store, settings, media_id, now=live.state.clock.now()
        )
    )
    for _ in range(400):  # the claim is committed before the row is read for the work
        if (await stored(live, media_id)).derive_attempts == 1 or making.done():
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)
    assert not making.done(), "the copy was made before the part could be recorded"
    assert await merged_apart(live, media_id, {"check-0": entry("check-0")})
    assert await making is True
    media = await stored(live, media_id)
    assert media.derive_state is DeriveState.done
    assert media.derivatives is not None
    assert set(media.derivatives) == {"play", "check-0"}
    assert media.derivatives["check-0"] == entry("check-0")
