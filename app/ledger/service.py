"""The case register (台账) as .xlsx (one case's file, 一案一卷: ``dossier.py``).

The ledger is written with openpyxl's write-only mode into a temporary file,
reading cases in batches, so a 100k-row ledger never sits in memory. It has
the queue's scope, filters and order, and masks identity per role.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import Callback, Complaint, Rating, StaffUser
from app.models.enums import Channel
from app.workflow import queue
from app.workflow.machine import Card

HEADERS = [
    "编号",
    "来源渠道",
    "反映人",
    "类别",
    "事项",
    "所属区域",
    "承办单位",
    "受理时间",
    "办理时限",
    "状态",
    "警示",
    "办结时间",
    "办理结果",
    "满意度",
    "回访结果",
]
CHANNEL_CN = {
    Channel.online: "网上（小程序）",
    Channel.visit: "来访",
    Channel.phone: "来电",
    Channel.letter: "来信",
    Channel.door_to_door: "走访发现",
    Channel.agent: "代办",
    Channel.open311: "外部系统（Open311）",
}
CARD_CN = {Card.none: "", Card.yellow: "黄牌", Card.orange: "橙牌", Card.red: "红牌"}
VERDICT_CN = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}
BATCH = 1000


def _local(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else ""


def _reporter(user: StaffUser, c: Complaint) -> str:
    if c.anonymous:
        return "匿名"
    r = queue.reporter_for(user, c, full=False)
    if not r.visible:  # out of this role's sight, or an accuser (case file only)
        return "（保密）"
    return " ".join(p for p in (r.name, r.phone) if p)


async def _extras(
    session: AsyncSession, ids: Sequence[str]
) -> tuple[dict[str, Rating], dict[str, Callback]]:
    ratings: dict[str, Rating] = {}
    for r in (
        await session.execute(
            select(Rating).where(Rating.complaint_id.in_(ids)).order_by(Rating.round)
        )
    ).scalars():
        ratings[r.complaint_id] = r  # the latest round wins
    callbacks = {
        cb.complaint_id: cb
        for cb in (
            await session.execute(select(Callback).where(Callback.complaint_id.in_(ids)))
        ).scalars()
    }
    return ratings, callbacks


def _callback_text(cb: Callback | None) -> str:
    if cb is None or cb.status != "done":
        return "" if cb is None else "待回访"
    if not cb.reached:
        return "未联系上"
    parts = ["已解决" if cb.resolved else "未解决" if cb.resolved is False else "已回访"]
    if cb.satisfaction:
        parts.append(VERDICT_CN.get(cb.satisfaction, cb.satisfaction))
    if cb.fake_closure:
        parts.append("虚假办结")
    return "，".join(parts)


def scratch_file(prefix: str, suffix: str) -> Path:
    """A temporary file for a download, its descriptor closed at once (the
    response streams it by name and deletes it when sent)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(name)


async def write_ledger(
    session: AsyncSession,
    user: StaffUser,
    f: queue.QueueFilter,
    *,
    now: datetime,
    settings: Settings,
    limit: int = 200_000,
) -> tuple[Path, list[Complaint]]:
    """The register as a scratch file, and the protected cases whose filer a
    phone filter identified (``QueueResult.identity_reads``): the caller
    records those reads in a writer session before it hands the file out."""
    tz = ZoneInfo(settings.timezone)
    tmp = scratch_file("ledger-", ".xlsx")
    try:
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("台账")
        bold = Font(bold=True)
        header = []
        for h in HEADERS:
            cell = WriteOnlyCell(ws, value=h)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        categories = {c.code: c.name for c in (await _category_names(session))}
        written = 0
        reads: list[Complaint] = []
        after: queue.QueueCursor | None = None
        while written < limit:
            page = await queue.queue(
                session, user, f, now=now, settings=settings, limit=BATCH, after=after
            )
            items = page.items
            reads.extend(page.identity_reads)
            if not items:
                break
            ids = [i.id for i in items]
            rows = {
                c.id: c
                for c in (
                    await session.execute(select(Complaint).where(Complaint.id.in_(ids)))
                ).scalars()
            }
            ratings, callbacks = await _extras(session, ids)
            batch: list[list[Any]] = []
            for item in items:
                c = rows[item.id]
                rating = ratings.get(c.id)
                batch.append(
                    [
                        c.tracking_no,
                        CHANNEL_CN[c.channel],
                        _reporter(user, c),
                        categories.get(c.item_code[:2], c.item_code[:2]),
                        item.item.name,
                        item.region_name,
                        item.unit.name,
                        _local(c.received_at, tz),
                        _local(c.due_at, tz),
                        c.status.label,
                        CARD_CN[item.card],
                        _local(c.closed_at, tz),
                        c.result or "",
                        f"{VERDICT_CN[rating.satisfaction]}（{rating.score}分）" if rating else "",
                        _callback_text(callbacks.get(c.id)),
                    ]
                )
            await asyncio.to_thread(_append_rows, ws, batch)
            written += len(items)
            if page.next_cursor is None:
                break
            after = queue.QueueCursor.decode(page.next_cursor)
            session.expunge_all()  # keep the identity map from growing with the ledger
        await asyncio.to_thread(wb.save, str(tmp))
        return tmp, reads
    except BaseException:  # nothing half-written is left behind
        tmp.unlink(missing_ok=True)
        raise


def _append_rows(ws: Any, rows: list[list[Any]]) -> None:
    for row in rows:
        ws.append(row)


async def _category_names(session: AsyncSession) -> list[Any]:
    from app.taxonomy import service as taxonomy_service

    snap = await taxonomy_service.snapshot(session)
    return list(snap.document.categories)
