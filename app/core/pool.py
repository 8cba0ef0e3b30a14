"""A connection pool that serves the requests waiting for it in order.

SQLAlchemy's asyncio pool keeps its connections in an ``asyncio.Queue`` and a
checkout takes one that is free without awaiting. A check-in wakes the
longest waiter, but the waiter runs only at the event loop's next turn: the
task that checked the connection in, or any other that asks before then,
takes it first, and the waiter, finding the queue empty again, goes to the
back of the line. A request whose statements follow one another without an
await between them (a filing's admission, then its case; any work that
checks out, runs, checks in and checks out again) takes the connection back
every time, so under load a waiting request could be passed over until the
pool's timeout (30 s) and answer 503. In process, reading cases with more
requests in flight than the pool has connections, one request in every
extra one waited for the whole run (5 to 9 s) while the others went on at
5 ms (bench/README.md).

Here a check-in hands the connection straight to the longest waiter, so a
connection is free to take only when nobody waits for one: first come,
first served. A waiter that gives up (its request cancelled, the pool's
timeout) after a connection was handed to it passes that connection on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, Generic, TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import memoized_property
from sqlalchemy.util.queue import AsyncAdaptedQueue

_T = TypeVar("_T")


class HandOffQueue(Generic[_T]):
    """The ``asyncio.Queue`` calls SQLAlchemy's adapter makes, served in order.

    An item is kept only while nobody waits; a put with waiters gives the item
    to the first of them that is still waiting."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self._lifo = use_lifo
        self._items: deque[_T] = deque()
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    def put_nowait(self, item: _T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        if self.full():
            raise asyncio.QueueFull
        self._items.append(item)

    async def put(self, item: _T) -> None:
        # The pool never blocks to check a connection in; a full queue is its
        # overflow's business (it closes the connection).
        self.put_nowait(item)

    def get_nowait(self) -> _T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop() if self._lifo else self._items.popleft()

    async def get(self) -> _T:
        if self._items:  # then nobody is waiting
            return self.get_nowait()
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection as it gave up: the next waiter's.
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):  # a put may have popped it
                    self._waiters.remove(waiter)
            raise


class HandOffAsyncAdaptedQueue(AsyncAdaptedQueue[ConnectionPoolEntry]):
    @memoized_property
    def _queue(self) -> Any:  # created at first use, on the running loop, as the base's
        return HandOffQueue(self.maxsize, self.use_lifo)


class FairAsyncAdaptedQueuePool(AsyncAdaptedQueuePool):
    """``AsyncAdaptedQueuePool`` whose waiters are served first come, first served."""

    _queue_class = HandOffAsyncAdaptedQueue
