"""Engines with small pools of their own, for the tests that watch which
connection a statement takes (kept, borrowed, the session's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import driver
from app.core.db import create_engine
from tests.conftest import make_settings


def url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


def hot_of(request: Any) -> driver.HotConnections:
    """The kept connections of a request's read sessionmaker."""
    hot = request.app.state.read_sessionmaker.hot_connections
    assert isinstance(hot, driver.HotConnections)
    return hot


async def _pool_of(committing_engine: AsyncEngine, size: int) -> AsyncIterator[AsyncEngine]:
    url = url_of(committing_engine)
    made = create_engine(make_settings(database_url=url, database_pool_size=size), url=url)
    yield made
    await made.dispose()


@pytest.fixture
async def small(committing_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine of one pooled connection, so "which connection" is observable."""
    async for made in _pool_of(committing_engine, 1):
        yield made


@pytest.fixture
async def four(committing_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A pool of four: two may be kept, two stay the pool's."""
    async for made in _pool_of(committing_engine, 4):
        yield made
