"""Typed FastAPI dependencies for the shared plumbing.

They are ``async def`` although they never await: FastAPI runs a plain
``def`` dependency in its thread pool, and these run several times on every
request, where the thread hand-offs cost more CPU than the work (bench/).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.config import Settings
from app.core.db import get_read_session, get_session
from app.core.security import TokenService
from app.core.shared import SharedStore
from app.core.storage import MediaStore
from app.wechat.client import WeChatClient


async def _settings(request: Request) -> Settings:
    return Services(request).settings


async def _clock(request: Request) -> Clock:
    return Services(request).clock


async def _store(request: Request) -> MediaStore:
    return Services(request).store


async def _tokens(request: Request) -> TokenService:
    return Services(request).tokens


# scope="function": commit (or fail) before the response is sent, never after it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
# For a route that only reads (app/core/db.py ``read_session``): SQLite's
# write lock is not taken; a change left in it is an error.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
StoreDep = Annotated[MediaStore, Depends(_store)]
TokensDep = Annotated[TokenService, Depends(_tokens)]


async def _shared(request: Request) -> SharedStore:
    return Services(request).shared


async def _wechat(request: Request) -> WeChatClient:
    return Services(request).wechat


SharedDep = Annotated[SharedStore, Depends(_shared)]
WeChatDep = Annotated[WeChatClient, Depends(_wechat)]


class Services:
    """The app's shared services, read from ``app.state`` when used (tests
    replace them there), through one dependency.

    For the residents' hot routes (filing, tracking): FastAPI 0.165 spends
    about 13 µs of CPU solving even a trivial dependency, and those routes
    took five of them (settings, clock, store, tokens, shared store) besides
    the token and the session; one solve instead of five (bench/README.md).
    """

    __slots__ = ("_state",)

    def __init__(self, request: Request) -> None:
        self._state = request.app.state

    @property
    def settings(self) -> Settings:
        settings: Settings = self._state.settings
        return settings

    @property
    def clock(self) -> Clock:
        clock: Clock = self._state.clock
        return clock

    @property
    def store(self) -> MediaStore:
        store: MediaStore = self._state.media_store
        return store

    @property
    def tokens(self) -> TokenService:
        tokens: TokenService = self._state.tokens
        return tokens

    @property
    def shared(self) -> SharedStore:
        shared: SharedStore = self._state.shared_store
        return shared

    @property
    def wechat(self) -> WeChatClient:
        client: WeChatClient = self._state.wechat
        return client


async def _services(request: Request) -> Services:
    return Services(request)


ServicesDep = Annotated[Services, Depends(_services)]
