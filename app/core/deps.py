"""Typed FastAPI dependencies for the shared plumbing."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.config import Settings
from app.core.db import get_session
from app.core.security import TokenService
from app.core.shared import SharedStore
from app.core.storage import MediaStore
from app.wechat.client import WeChatClient


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def _store(request: Request) -> MediaStore:
    store: MediaStore = request.app.state.media_store
    return store


def _tokens(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
StoreDep = Annotated[MediaStore, Depends(_store)]
TokensDep = Annotated[TokenService, Depends(_tokens)]


def _shared(request: Request) -> SharedStore:
    store: SharedStore = request.app.state.shared_store
    return store


def _wechat(request: Request) -> WeChatClient:
    client: WeChatClient = request.app.state.wechat
    return client


SharedDep = Annotated[SharedStore, Depends(_shared)]
WeChatDep = Annotated[WeChatClient, Depends(_wechat)]
