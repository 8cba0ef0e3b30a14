from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.deps import Services
from app.moderation.service import ContentGate


def content_gate(services: Services) -> ContentGate:
    """Built per request from app.state, so a replaced WeChat client is used."""
    return ContentGate(services.settings, services.wechat)


async def _gate(request: Request) -> ContentGate:
    return content_gate(Services(request))


ContentGateDep = Annotated[ContentGate, Depends(_gate)]
