"""A sync reader over an async chunk stream, for SDKs that want ``read(n)``.

The SDK call runs in a worker thread (anyio.to_thread); each ``read`` hops
back to the event loop for the next chunk, so at most one part is in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

import anyio.from_thread


class StreamingReader:
    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._iter: AsyncIterator[bytes] = chunks.__aiter__()
        self._buffer = bytearray()
        self._done = False
        self.size = 0
        self._sha = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    async def _next(self) -> bytes | None:
        try:
            return await self._iter.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buffer) < n):
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._done = True
                break
            self._buffer.extend(chunk)
            self.size += len(chunk)
            self._sha.update(chunk)
        if n < 0:
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
        return out
