"""``ydt worker``: the periodic work (red-card sweeps and their orders, folding
past days of the open-cases rollup, outbox delivery). Safe to run as several
processes: orders are unique per spell, folds lock the table they rewrite, and
notifications are claimed with leases."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.config import Settings
from app.notifications.delivery import DeliveryStats, deliver
from app.stats import rollup
from app.supervision import service as supervision
from app.wechat.client import WeChatClient

logger = logging.getLogger(__name__)


@dataclass
class TickResult:
    orders: int
    delivery: DeliveryStats


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def tick(
    sessionmaker: async_sessionmaker[AsyncSession],
    wechat: WeChatClient,
    settings: Settings,
    clock: Clock,
    *,
    me: str,
) -> TickResult:
    async with sessionmaker() as s:
        orders = await supervision.sweep_red_cards(s, now=clock.now())
        await s.commit()
    async with sessionmaker() as s:
        await rollup.compact_open_due(s, rollup.local_date(clock.now()), min_rows=200)
        await s.commit()
    stats = await deliver(sessionmaker, wechat, settings, worker_id=me, now=clock.now())
    return TickResult(orders, stats)


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    wechat: WeChatClient,
    settings: Settings,
    clock: Clock,
    *,
    interval: float,
    once: bool,
) -> None:
    me = worker_id()
    logger.info("worker started", extra={"worker": me})
    while True:
        try:
            result = await tick(sessionmaker, wechat, settings, clock, me=me)
            if result.orders or result.delivery.claimed:
                logger.info(
                    "worker tick", extra={"orders": result.orders, **result.delivery.__dict__}
                )
        except Exception:  # one bad tick must not stop the worker
            logger.exception("worker tick failed")
        if once:
            return
        await asyncio.sleep(interval)
