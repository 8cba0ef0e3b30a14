from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.moderation.service import ContentGate


async def _gate(request: Request) -> ContentGate:
    """Built per request from app.state, so a replaced WeChat client is used."""
    return ContentGate(request.app.state.settings, request.app.state.wechat)


ContentGateDep = Annotated[ContentGate, Depends(_gate)]
