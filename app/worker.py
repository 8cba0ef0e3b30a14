"""``ydt worker``: the periodic work (red-card sweeps and their orders, folding
past days of the open-cases rollup, outbox delivery, signed audit checkpoints,
WeChat content security of residents' media and of texts WeChat could not
judge at filing, playable copies of voice/video and sha256 checks of newly
attached media), and the statistics projector as its own loop
(app/stats/projector.py).
Safe to run as several processes: orders are unique per spell, folds lock the
table they rewrite, notifications are claimed with leases, and audit
checkpoints are unique per period."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import checkpoint as audit_checkpoint
from app.auth import sessions as auth_sessions
from app.core import heap
from app.core.clock import Clock
from app.core.config import Settings
from app.core.storage import MediaStore, create_media_store
from app.feedback import reminders as rating_reminders
from app.media import maintenance as media_maintenance
from app.moderation import worker as moderation_worker
from app.notifications.delivery import DeliveryStats, deliver
from app.staff import login as staff_login
from app.stats import projector, rollup
from app.supervision import service as supervision
from app.wechat.client import WeChatClient

logger = logging.getLogger(__name__)
_background: set[asyncio.Task[None]] = set()


@dataclass
class TickResult:
    orders: int
    delivery: DeliveryStats
    checkpoint: int | None = None  # number of the audit checkpoint this tick made
    media: media_maintenance.MediaTick | None = None
    moderation: moderation_worker.ModerationTick | None = None
    reminders: int = 0  # reminders to rate written into the outbox


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def tick(
    sessionmaker: async_sessionmaker[AsyncSession],
    wechat: WeChatClient,
    settings: Settings,
    clock: Clock,
    *,
    me: str,
    store: MediaStore | None = None,
) -> TickResult:
    async with sessionmaker() as s:
        orders = await supervision.sweep_red_cards(s, now=clock.now())
        await s.commit()
    async with sessionmaker() as s:  # before delivery, so they go out this tick
        reminders = await rating_reminders.remind(s, now=clock.now(), settings=settings)
        await s.commit()
    async with sessionmaker() as s:
        await rollup.compact_open_due(s, rollup.local_date(clock.now()), min_rows=200)
        await s.commit()
    async with sessionmaker() as s:  # ended sign-in sessions, old login audit rows
        await auth_sessions.purge(s, now=clock.now())
        await staff_login.purge(s, settings, now=clock.now())
        await s.commit()
    stats = await deliver(sessionmaker, wechat, settings, worker_id=me, now=clock.now())
    # Last: a checkpoint reads every chain head; one per period across workers.
    made = await audit_checkpoint.periodic(sessionmaker, settings, now=clock.now())
    store = store or create_media_store(settings)
    # Content security before the playable copies: staff wait for its verdicts.
    moderation = await moderation_worker.tick(
        sessionmaker, wechat, store, settings, now=clock.now()
    )
    # Media after it: playable copies can take minutes and touch no chain.
    media = await media_maintenance.tick(sessionmaker, store, settings, now=clock.now())
    return TickResult(orders, stats, made.seq if made else None, media, moderation, reminders)


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    wechat: WeChatClient,
    settings: Settings,
    clock: Clock,
    *,
    interval: float,
    once: bool,
    store: MediaStore | None = None,
) -> None:
    me = worker_id()
    store = store or create_media_store(settings)
    heap.settle()  # start-up's objects out of the collector's sight (app/core/heap.py)
    logger.info("worker started", extra={"worker": me})
    if once:
        async with sessionmaker() as s:
            await projector.drain(s, now=clock.now(), batch=settings.projector_batch)
            await s.commit()
    else:  # the rollups follow the event log within a second, not a tick
        projecting = asyncio.create_task(
            projector.run(
                sessionmaker,
                clock,
                interval=settings.projector_interval_seconds,
                batch=settings.projector_batch,
            )
        )
        _background.add(projecting)
        projecting.add_done_callback(_background.discard)
    first = True
    while True:
        started = time.monotonic()
        try:
            result = await tick(sessionmaker, wechat, settings, clock, me=me, store=store)
            media = result.media.__dict__ if result.media else {}
            if result.moderation:
                media.update({f"check_{k}": v for k, v in result.moderation.__dict__.items()})
            if result.orders or result.delivery.claimed or result.checkpoint or any(media.values()):
                logger.info(
                    "worker tick",
                    extra={
                        # An hourly checkpoint reads every chain: about 40 s at 1M
                        # cases (bench/README.md), which operators should see.
                        "seconds": round(time.monotonic() - started, 1),
                        "orders": result.orders,
                        "checkpoint": result.checkpoint,
                        **result.delivery.__dict__,
                        **{f"media_{k}": v for k, v in media.items()},
                    },
                )
        except Exception:  # one bad tick must not stop the worker
            logger.exception("worker tick failed")
        if first:
            # Said once, even when the round found nothing to do: after a
            # restart on a large backlog the first round can take a while,
            # and operators (and bench/servers.py) wait for it.
            logger.info(
                "worker first round done",
                extra={"seconds": round(time.monotonic() - started, 1)},
            )
            first = False
        if once:
            return
        await asyncio.sleep(interval)
