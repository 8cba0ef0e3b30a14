"""Shared steps of the content-security tests: turn it on, run the worker,
deliver WeChat's pushes through the real callback route, read the rows."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.core.storage import MediaStore
from app.models import Complaint, ComplaintEvent, ContentCheck, Media, Notification, Rating
from app.moderation import worker
from app.wechat.client import WeChatClient
from tests.fake_wechat import FakeWeChat

TOKEN = "push-token-1"
EVENTS = "/api/v1/wechat/events"


async def enable(app: FastAPI, **extra: Any) -> None:
    """Content security on, with a WeChat client patient enough for a loaded
    test machine (the suite's default 0.5 s is about login timeouts)."""
    app.state.settings = app.state.settings.model_copy(
        update={
            "content_security_enabled": True,
            "wechat_message_token": SecretStr(TOKEN),
            "wechat_timeout_seconds": 5.0,
            **extra,
        }
    )
    await app.state.wechat.aclose()
    app.state.wechat = WeChatClient(app.state.settings, app.state.shared_store)


async def tick(app: FastAPI, store: MediaStore, clock: FixedClock) -> worker.ModerationTick:
    maker: Any = app.state.sessionmaker
    return await worker.tick(maker, app.state.wechat, store, app.state.settings, now=clock.now())


async def push(
    client: AsyncClient,
    event: dict[str, Any],
    *,
    token: str = TOKEN,
    fmt: str = "json",
) -> Response:
    query, body, ctype = FakeWeChat.signed_push(event, token, fmt=fmt)
    return await client.post(EVENTS, params=query, content=body, headers={"Content-Type": ctype})


async def deliver_all(client: AsyncClient, fake: FakeWeChat, *, fmt: str = "json") -> None:
    """Every push the fake WeChat has queued, as WeChat would send it."""
    while fake.pending_pushes:
        resp = await push(client, fake.pending_pushes.pop(0), fmt=fmt)
        assert resp.status_code == 200 and resp.text == "success", resp.text


def _session(connection: AsyncConnection) -> AsyncSession:
    return AsyncSession(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


async def media_row(connection: AsyncConnection, media_id: str) -> Media:
    async with _session(connection) as s:
        m = await s.get(Media, media_id)
        assert m is not None
        return m


async def complaint_row(connection: AsyncConnection, cid: str) -> Complaint:
    async with _session(connection) as s:
        c = await s.get(Complaint, cid)
        assert c is not None
        return c


async def checks_of(connection: AsyncConnection, target_prefix: str = "") -> list[ContentCheck]:
    async with _session(connection) as s:
        rows = await s.execute(
            select(ContentCheck)
            .where(ContentCheck.target.startswith(target_prefix))
            .order_by(ContentCheck.part)
        )
        return list(rows.scalars())


async def counts(connection: AsyncConnection) -> dict[str, int]:
    async with _session(connection) as s:
        return {
            m.__tablename__: int(
                (await s.execute(select(func.count()).select_from(m))).scalar_one()
            )
            for m in (Complaint, ComplaintEvent, Notification, Rating, ContentCheck)
        }


def content_calls(fake: FakeWeChat, path: str) -> list[dict[str, Any]]:
    return [body for _, p, body in fake.requests if p == path]
