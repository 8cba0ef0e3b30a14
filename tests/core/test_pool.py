"""The connection pool serves its waiters first come, first served
(app/core/pool.py): a check-in hands the connection to the longest waiter, so
a task that checks in and out again without awaiting cannot take it back past
them, and a waiter that gives up passes on what it was handed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from app.core.db import create_engine
from app.core.pool import FairAsyncAdaptedQueuePool, HandOffAsyncAdaptedQueue, HandOffQueue
from tests.conftest import make_settings


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_put_goes_to_the_longest_waiter_and_nobody_takes_it_past_them() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await _settle()
    assert queue.waiting() == 2
    queue.put_nowait("a")
    # Checked in and asked for again before the waiter ran: not free to take.
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    third = asyncio.create_task(queue.get())  # joins the back of the line
    queue.put_nowait("b")
    queue.put_nowait("c")
    assert [await first, await second, await third] == ["a", "b", "c"]
    assert queue.empty() and queue.waiting() == 0


async def test_a_waiter_that_gives_up_after_being_handed_one_passes_it_on() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    leaving = asyncio.create_task(queue.get())
    staying = asyncio.create_task(queue.get())
    await _settle()
    queue.put_nowait("conn")  # handed to ``leaving``, which has not run yet
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await staying == "conn"
    assert queue.empty()


async def test_a_waiter_cancelled_before_a_put_leaves_the_line() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    gone = asyncio.create_task(queue.get())
    await _settle()
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert queue.waiting() == 0
    queue.put_nowait("kept")  # nobody waits: kept for the next get
    assert queue.qsize() == 1
    assert await queue.get() == "kept"


async def test_a_full_queue_refuses_and_lifo_takes_the_latest() -> None:
    queue: HandOffQueue[int] = HandOffQueue(maxsize=2, use_lifo=True)
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert queue.full()
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait(3)
    assert queue.get_nowait() == 2
    assert queue.get_nowait() == 1
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_the_pools_timeout_still_applies_and_loses_nothing() -> None:
    adapted: Any = HandOffAsyncAdaptedQueue(maxsize=2)  # holds pool entries; strings do here

    def wait() -> Any:
        return adapted.get(block=True, timeout=0.05)

    started = time.monotonic()
    with pytest.raises(Empty):
        await greenlet_spawn(wait)
    assert 0.04 <= time.monotonic() - started < 1.0
    adapted.put("conn", block=False)  # the timed-out waiter is gone: kept
    assert adapted.qsize() == 1
    assert await greenlet_spawn(wait) == "conn"


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"], indirect=True)
async def test_no_task_starves_when_others_check_in_and_out_back_to_back(
    committing_engine: AsyncEngine,
) -> None:
    """One task more than the pool has connections, each checking in and
    straight out again (no await between): every one of them keeps getting a
    connection. (SQLAlchemy's own queue let one task wait the whole time.)"""
    url = committing_engine.url.render_as_string(hide_password=False)
    engine = create_engine(make_settings(database_url=url, database_pool_size=2), url=url)
    pool: Any = engine.sync_engine.pool
    assert isinstance(pool, FairAsyncAdaptedQueuePool)
    counts = [0] * (pool.size() + 1)
    stop = time.monotonic() + 0.6

    def cycle(i: int) -> None:
        fairy = pool.connect()  # checked out in the same greenlet as the last check-in
        try:
            dbapi: Any = fairy.dbapi_connection
            dbapi.cursor().execute("select 1")
        finally:
            fairy.close()
        counts[i] += 1

    async def task(i: int) -> None:
        while time.monotonic() < stop:
            await greenlet_spawn(cycle, i)

    try:
        await asyncio.gather(*(task(i) for i in range(len(counts))))
    finally:
        await engine.dispose()
    assert min(counts) > 0, counts
    assert min(counts) * 4 >= max(counts), counts
