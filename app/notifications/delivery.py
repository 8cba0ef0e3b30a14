"""The worker side of the outbox: claim, send, retry with backoff, dead-letter.

Rows are claimed with a lease (claimed_by / claimed_until) in a short
transaction of their own, so two workers never send the same message; a
worker that dies leaves its lease to expire and another one picks it up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.complaints import identity
from app.core.config import Settings
from app.core.errors import AppError
from app.models import Citizen, Complaint, Notification
from app.wechat.client import SubscribeRefused, WeChatClient, send_subscribe

logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=120)


@dataclass
class DeliveryStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    worker_id: str,
    now: datetime,
    batch: int = 50,
) -> list[int]:
    async with sessionmaker() as s:
        candidates = (
            select(Notification.id)
            .where(
                Notification.channel == "wechat_subscribe",
                Notification.status.in_(["pending", "retry"]),
                Notification.next_attempt_at <= now,
                or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(batch)
        )
        if s.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list((await s.execute(candidates)).scalars())
        if not ids:
            return []
        # Re-checking the lease in the UPDATE makes the claim safe without
        # SKIP LOCKED too (SQLite serialises writers).
        await s.execute(
            update(Notification)
            .where(
                Notification.id.in_(ids),
                or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
            )
            .values(claimed_by=worker_id, claimed_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        mine = list(
            (
                await s.execute(
                    select(Notification.id).where(
                        Notification.id.in_(ids),
                        Notification.claimed_by == worker_id,
                        Notification.claimed_until == now + LEASE,
                    )
                )
            ).scalars()
        )
        await s.commit()
        return mine


async def _openid(
    session: AsyncSession, n: Notification, complaint: Complaint | None
) -> str | None:
    """Where the message goes. A protected case's notice names no recipient:
    the openid comes from the case's sealed identity, unsealed only here."""
    if n.recipient_id is not None:
        citizen = await session.get(Citizen, n.recipient_id)
        return citizen.openid if citizen else None
    if complaint is None:
        return None
    try:
        filer = identity.of(complaint)
    except AppError:  # a key this worker lacks: logged by the caller as no recipient
        logger.error("sealed identity does not open", extra={"notification": n.id})
        return None
    if filer.openid:
        return filer.openid
    citizen = await session.get(Citizen, filer.citizen_id) if filer.citizen_id else None
    return citizen.openid if citizen else None


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    wechat: WeChatClient,
    settings: Settings,
    *,
    worker_id: str,
    now: datetime,
) -> DeliveryStats:
    stats = DeliveryStats()
    ids = await claim(sessionmaker, worker_id=worker_id, now=now)
    stats.claimed = len(ids)
    tz = ZoneInfo(settings.timezone)
    for nid in ids:
        async with sessionmaker() as s:
            n = await s.get(Notification, nid)
            if n is None or n.claimed_by != worker_id:
                continue
            complaint = await s.get(Complaint, n.complaint_id) if n.complaint_id else None
            openid = await _openid(s, n, complaint)
            template = settings.wechat_templates.get(n.kind)
            n.claimed_by, n.claimed_until = None, None
            if openid is None or template is None or not wechat.configured:
                n.status, n.last_error = (
                    "skipped",
                    "未配置订阅消息模板或微信" if openid else "收件人不存在",
                )
                stats.skipped += 1
            else:
                try:
                    await send_subscribe(
                        wechat,
                        openid=openid,
                        template_id=template,
                        page=f"pages/complaint/detail?id={n.complaint_id}",
                        data={
                            "character_string1": complaint.tracking_no if complaint else "",
                            "thing2": n.title[:20],
                            "thing3": n.body[:20],
                            "time4": f"{n.created_at.astimezone(tz):%Y-%m-%d %H:%M}",
                        },
                        now=now,
                    )
                except SubscribeRefused as exc:
                    n.attempts += 1
                    n.status, n.last_error = "dead", exc.detail
                    stats.dead += 1
                except AppError as exc:
                    n.attempts += 1
                    n.last_error = exc.detail
                    if n.attempts >= settings.notify_max_attempts:
                        n.status = "dead"
                        stats.dead += 1
                    else:
                        n.status = "retry"
                        n.next_attempt_at = now + timedelta(
                            seconds=settings.notify_backoff_seconds * 2 ** (n.attempts - 1)
                        )
                        stats.retried += 1
                else:
                    n.attempts += 1
                    n.status, n.sent_at, n.last_error = "sent", now, None
                    stats.sent += 1
            await s.commit()
    if stats.claimed:
        logger.info("notifications delivered", extra=stats.__dict__)
    return stats
