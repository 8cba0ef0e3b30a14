"""The worker side of the outbox: claim, send, retry with backoff, dead-letter.

Rows are claimed with a lease (claimed_by / claimed_until) in a short
transaction of their own, so two workers never send the same message; a
worker that dies leaves its lease to expire and another one picks it up.

A batch can take longer than its lease (each send may wait
``YDT_WECHAT_TIMEOUT_SECONDS``), so just before each send the worker renews
its lease on that one row, conditionally: if the lease ran out and another
worker took the row meanwhile, the renewal fails and this worker leaves the
row alone. A worker killed between WeChat's answer and its commit leaves one
message to be sent again after the lease (at-least-once for that message:
WeChat's subscribe API takes no idempotency key).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.complaints import identity
from app.core.config import Settings
from app.core.errors import AppError
from app.models import Citizen, Complaint, Notification
from app.notifications import service as notify
from app.notifications import templates
from app.stats import projector, same_day
from app.wechat.client import SubscribeRefused, WeChatClient, send_subscribe

logger = logging.getLogger(__name__)
LEASE = timedelta(seconds=120)  # the default of YDT_NOTIFY_LEASE_SECONDS


@dataclass
class DeliveryStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0


# 两个当天: a real-name resident hears the same day that the case was accepted
# and that it was closed; these go first and retry within minutes, not hours.
SAME_DAY_KINDS = ("accepted", "closed")
SAME_DAY_MAX_BACKOFF = timedelta(minutes=10)


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    worker_id: str,
    now: datetime,
    kinds: list[str] | None = None,
    batch: int = 50,
    lease: timedelta = LEASE,
) -> list[int]:
    """Lease up to ``batch`` due notices of ``kinds`` (None: any kind). Kinds
    that cannot be sent are not claimed at all: they stay pending, untouched,
    until the configuration that sends them arrives."""
    if kinds is not None and not kinds:
        return []
    async with sessionmaker() as s:
        candidates = (
            select(Notification.id)
            .where(
                Notification.channel == "wechat_subscribe",
                Notification.status.in_(["pending", "retry"]),
                Notification.next_attempt_at <= now,
                or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
                *([Notification.kind.in_(kinds)] if kinds is not None else []),
            )
            .order_by(
                case((Notification.kind.in_(SAME_DAY_KINDS), 0), else_=1),
                Notification.next_attempt_at,
                Notification.id,
            )
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
            .values(claimed_by=worker_id, claimed_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        mine = list(
            (
                await s.execute(
                    select(Notification.id).where(
                        Notification.id.in_(ids),
                        Notification.claimed_by == worker_id,
                        Notification.claimed_until == now + lease,
                    )
                )
            ).scalars()
        )
        await s.commit()
        leased = set(mine)
        return [i for i in ids if i in leased]  # in claim order: same-day kinds first


async def _renew(
    s: AsyncSession, nid: int, *, worker_id: str, now: datetime, lease: timedelta
) -> bool:
    """Extend our lease on one row if we still hold it; committed before the send."""
    renewed = await s.execute(
        update(Notification)
        .where(
            Notification.id == nid,
            Notification.claimed_by == worker_id,
            Notification.claimed_until >= now,
        )
        .values(claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    await s.commit()
    return getattr(renewed, "rowcount", 0) == 1


async def _openid(
    session: AsyncSession, n: Notification, complaint: Complaint | None
) -> str | None:
    """Where the message goes. A protected case's notice names no recipient:
    the filer comes from the case's sealed identity, unsealed only here, and
    the openid from it (cases filed before 2026-12-06) or from the filer's
    citizen row (app/complaints/identity.py)."""
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


def _slots(n: Notification, complaint: Complaint | None) -> dict[str, str]:
    """The notice's pieces; rows written before they were stored get them from
    the case and the text (never cut: the layout decides what fits where)."""
    slots = {
        "tracking_no": complaint.tracking_no if complaint else "",
        "status": templates.STATUS_WORDS.get(n.kind, ""),
        "summary": n.body,
        "tip": n.title,
        "at": n.created_at.isoformat(),
        "due": complaint.due_at.isoformat() if complaint else n.created_at.isoformat(),
    }
    slots.update({k: v for k, v in (n.data or {}).items() if isinstance(v, str) and v})
    return slots


def _backoff(settings: Settings, n: Notification) -> timedelta:
    delay = timedelta(seconds=settings.notify_backoff_seconds * 2 ** (n.attempts - 1))
    return min(delay, SAME_DAY_MAX_BACKOFF) if n.kind in SAME_DAY_KINDS else delay


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    wechat: WeChatClient,
    settings: Settings,
    *,
    worker_id: str,
    now: datetime,
) -> DeliveryStats:
    stats = DeliveryStats()
    kinds = notify.template_kinds(settings) if wechat.configured else []
    lease = timedelta(seconds=settings.notify_lease_seconds)
    ids = await claim(sessionmaker, worker_id=worker_id, now=now, kinds=kinds, lease=lease)
    stats.claimed = len(ids)
    tz = ZoneInfo(settings.timezone)
    started = time.monotonic()
    for nid in ids:
        async with sessionmaker() as s:
            # ``now`` plus the time this batch has taken so far.
            current = now + timedelta(seconds=time.monotonic() - started)
            if not await _renew(s, nid, worker_id=worker_id, now=current, lease=lease):
                continue  # our lease ran out and another worker has the row
            n = await s.get(Notification, nid)
            if n is None or n.claimed_by != worker_id:
                continue
            complaint = await s.get(Complaint, n.complaint_id) if n.complaint_id else None
            openid = await _openid(s, n, complaint)
            # The renewed lease is kept and the transaction ended before WeChat
            # is asked: the notice stays ours by the lease, and no transaction
            # waits on the send (on SQLite one would hold the database's write
            # lock, every filing's, for up to a WeChat timeout).
            await s.commit()
            template = settings.wechat_templates.get(n.kind)
            layout = settings.wechat_template_fields.get(n.kind)
            n.claimed_by, n.claimed_until = None, None
            if openid is None:
                n.status, n.last_error = "skipped", "收件人不存在"
                stats.skipped += 1
                await s.commit()
                continue
            try:
                if template is None or layout is None:
                    raise templates.TemplateMisfit(f"{n.kind}: no template or field layout")
                data = templates.message_data(layout, _slots(n, complaint), tz)
            except templates.TemplateMisfit as exc:
                # A layout the operator must fix: kept pending, looked at again later.
                logger.error("notice does not fit its template", extra={"error": str(exc)})
                n.last_error = f"订阅消息模板字段配置有误：{exc}"
                n.next_attempt_at = now + timedelta(hours=1)
                await s.commit()
                continue
            try:
                await send_subscribe(
                    wechat,
                    openid=openid,
                    template_id=template,
                    page=f"pages/complaint/detail?id={n.complaint_id}",
                    data=data,
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
                    n.next_attempt_at = now + _backoff(settings, n)
                    stats.retried += 1
            else:
                n.attempts += 1
                n.status, n.sent_at, n.last_error = "sent", now, None
                stats.sent += 1
                if n.kind in same_day.KINDS and n.recipient_kind == "citizen" and n.complaint_id:
                    # 两个当天 counts this delivery: recounted with the send,
                    # in the projector's turn so no recount of the case interleaves.
                    await s.flush()
                    await projector.take_turn(s, wait=True)
                    await same_day.recount(s, [n.complaint_id])
            await s.commit()
    if stats.claimed:
        logger.info("notifications delivered", extra=stats.__dict__)
    return stats
