"""The queue page: the same scoped, keyset-paged queue as
``GET /api/v1/staff/complaints``, with the console's own filters ("assigned to
me", "waiting for my signature", channel) and the counts per card.

The filter form is a plain GET form (it works without JavaScript); htmx swaps
only the results when a filter changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from app.console import lookups
from app.console.dependencies import Ctx
from app.console.routing import console_router
from app.console.templating import render
from app.core.deps import SessionDep
from app.core.errors import BadRequest
from app.models import StaffUser
from app.models.enums import Channel, ComplaintStatus, StaffRole
from app.workflow import queue as workflow_queue
from app.workflow.machine import Card

router = console_router(prefix="/console")

PAGE_SIZE = 30
SIGNERS = (StaffRole.supervisor, StaffRole.leader, StaffRole.handler)
FILTER_KEYS = ("status", "card", "item_code", "region_code", "channel", "q", "mine", "to_sign")
_ITEM = re.compile(r"\d{4}")
_REGION = re.compile(r"\d{12}")


@dataclass(frozen=True, slots=True)
class Filters:
    """The filter form's values as typed (for the form and the links) and the
    queue filter they mean."""

    values: dict[str, str]
    query: workflow_queue.QueueFilter

    def link(self, **changes: str | None) -> str:
        merged = {**self.values, **changes}
        pairs = {k: v for k, v in merged.items() if v}
        return "/console/queue" + ("?" + urlencode(pairs) if pairs else "")


def _choice(raw: str, enum_: type[ComplaintStatus] | type[Card] | type[Channel], what: str) -> str:
    if raw and raw not in {e.value for e in enum_}:
        raise BadRequest(f"{what}取值无效")
    return raw


def parse_filters(request: Request, user: StaffUser) -> Filters:
    """Empty fields mean "any" (a GET form sends every field, filled or not)."""
    p = request.query_params
    values = {k: (p.get(k) or "").strip() for k in FILTER_KEYS}
    status = _choice(values["status"], ComplaintStatus, "状态")
    card = _choice(values["card"], Card, "警示牌")
    channel = _choice(values["channel"], Channel, "渠道")
    if values["item_code"] and not _ITEM.fullmatch(values["item_code"]):
        raise BadRequest("事项编码为 4 位数字")
    if values["region_code"] and not _REGION.fullmatch(values["region_code"]):
        raise BadRequest("区划代码为 12 位数字")
    if len(values["q"]) > 50:
        raise BadRequest("搜索内容不超过 50 个字")
    values["mine"] = "1" if values["mine"] else ""
    values["to_sign"] = "1" if values["to_sign"] else ""
    query = workflow_queue.QueueFilter(
        status=ComplaintStatus(status) if status else None,
        card=Card(card) if card else None,
        item_code=values["item_code"] or None,
        region_code=values["region_code"] or None,
        q=values["q"] or None,
        channel=Channel(channel) if channel else None,
        cadre_id=user.id if values["mine"] else None,
        signer=user if values["to_sign"] else None,
    )
    return Filters(values, query)


@router.get("/queue")
async def queue_page(request: Request, ctx: Ctx, session: SessionDep) -> Response:
    filters = parse_filters(request, ctx.user)
    cursor = request.query_params.get("cursor") or None
    if cursor is not None and len(cursor) > 80:
        raise BadRequest("翻页游标无效，请从第一页重新加载")
    page = workflow_queue.queue_page(limit=PAGE_SIZE, cursor=cursor, offset=None)
    result = await workflow_queue.queue(
        session,
        ctx.user,
        filters.query,
        now=ctx.now,
        settings=ctx.settings,
        limit=page.limit,
        offset=page.offset,
        after=page.after,
    )
    counts = await workflow_queue.card_counts(session, ctx.user, filters.query, now=ctx.now)
    cadres = await lookups.staff_names(session, (i.cadre_id for i in result.items))
    values: dict[str, Any] = dict(
        items=result.items,
        next_link=filters.link(cursor=result.next_cursor) if result.next_cursor else None,
        first_link=filters.link() if cursor else None,
        filters=filters,
        counts=counts,
        card_order=[Card.red, Card.orange, Card.yellow, Card.none],
        cadres=cadres,
        card_labels=lookups.CARD_LABELS,
        channel_labels=lookups.CHANNEL_LABELS,
        priority_labels={p.value: label for p, label in lookups.PRIORITY_LABELS.items()},
    )
    if request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == (
        "queue-results"
    ):
        return render(request, "queue_results.html", ctx=ctx, **values)
    return render(
        request,
        "queue.html",
        ctx=ctx,
        statuses=lookups.STATUS_CHOICES,
        regions=await lookups.regions_in_reach(session, ctx.user),
        categories=await lookups.categories(session),
        may_sign=ctx.user.role in SIGNERS,
        **values,
    )
