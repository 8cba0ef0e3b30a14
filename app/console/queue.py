"""The queue page: the same scoped, keyset-paged queue as
``GET /api/v1/staff/complaints``, with the console's own filters ("assigned to
me", "waiting for my signature", channel) and the counts per card.

The filter form is a plain GET form (it works without JavaScript); htmx swaps
only the results when a filter changes. Searching by the filer's name or phone
is a POST form instead, so identity never appears in a URL (history, logs,
Referer), and only the supervision side is offered it.

A dashboard figure links here with ``from``, ``to`` and ``metric``: the queue
then holds the cases that figure counts (``workflow.cohort``) and says how many.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import Response

from app.console import lookups, marks
from app.console.dependencies import ConsoleContext, CsrfForm, Ctx, ReadingCtx, field
from app.console.routing import console_router
from app.console.security import set_cookie
from app.console.templating import redirect, render, safe_next
from app.core.deps import ReadSessionDep, SessionDep
from app.core.errors import BadRequest, Forbidden
from app.core.schemas import DB_INT_MAX
from app.models.enums import Channel, ComplaintStatus, StaffRole
from app.workflow import cohort as cohort_filter
from app.workflow import queue as workflow_queue
from app.workflow.machine import Card

router = console_router(prefix="/console")

PAGE_SIZE = 30
SIGNERS = (StaffRole.supervisor, StaffRole.leader, StaffRole.handler)
FILTER_KEYS = (
    "status",
    "card",
    "item_code",
    "region_code",
    "channel",
    "q",
    "mine",
    "to_sign",
    # from a dashboard figure
    "from",
    "to",
    "metric",
    "unit_id",
    "category",
)
# Who may find cases by the filer's name or phone: the supervision side, which
# sees filers in the case file; a department or an agent works the cases it is
# given and has no business looking residents up across cases.
IDENTITY_SEARCHERS = frozenset({StaffRole.supervisor, StaffRole.leader, StaffRole.admin})
SEARCH_LIMIT = 100
_ITEM = re.compile(r"\d{4}")
_CATEGORY = re.compile(r"\d{2}")
_REGION = re.compile(r"\d{12}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,18}")


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


EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


def parse_day(raw: str, what: str) -> date | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest(f"{what}格式应为 年-月-日") from exc
    if len(raw) != 10 or not EARLIEST <= day <= LATEST:
        raise BadRequest(f"{what}超出范围")
    return day


def _cohort(values: dict[str, str]) -> cohort_filter.Cohort | None:
    metric = values["metric"]
    if metric and metric not in cohort_filter.METRIC_LABELS:
        raise BadRequest("统计口径取值无效")
    date_from = parse_day(values["from"], "开始日期")
    date_to = parse_day(values["to"], "结束日期")
    if date_from and date_to and date_from > date_to:
        raise BadRequest("开始日期不能晚于结束日期")
    if not (metric or date_from or date_to):
        return None
    return cohort_filter.Cohort(date_from, date_to, metric or None)


def _unit_id(raw: str) -> int | None:
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= DB_INT_MAX):
        raise BadRequest("单位编号无效")
    return int(raw)


def parse_filters(source: Any, ctx: ConsoleContext) -> Filters:
    """Empty fields mean "any" (a GET form sends every field, filled or not).
    ``source`` is the query string, or the search form's fields."""
    user = ctx.user
    values = {k: (v if isinstance(v := source.get(k), str) else "").strip() for k in FILTER_KEYS}
    status = _choice(values["status"], ComplaintStatus, "状态")
    card = _choice(values["card"], Card, "警示牌")
    channel = _choice(values["channel"], Channel, "渠道")
    if values["item_code"] and not _ITEM.fullmatch(values["item_code"]):
        raise BadRequest("事项编码为 4 位数字")
    if values["region_code"] and not _REGION.fullmatch(values["region_code"]):
        raise BadRequest("区划代码为 12 位数字")
    if len(values["q"]) > 50:
        raise BadRequest("搜索内容不超过 50 个字")
    if values["category"] and not _CATEGORY.fullmatch(values["category"]):
        raise BadRequest("事项类别为 2 位数字")
    values["mine"] = "1" if values["mine"] else ""
    values["to_sign"] = "1" if values["to_sign"] else ""
    query = workflow_queue.QueueFilter(
        unit_id=_unit_id(values["unit_id"]),
        category_code=values["category"] or None,
        cohort=_cohort(values),
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


async def _page(
    request: Request,
    ctx: ConsoleContext,
    session: SessionDep,
    filters: Filters,
    *,
    cursor: str | None,
    limit: int = PAGE_SIZE,
) -> dict[str, Any]:
    page = workflow_queue.queue_page(limit=limit, cursor=cursor, offset=None)
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
    await workflow_queue.record_identity_reads(
        session, ctx.user, result.identity_reads, now=ctx.now
    )
    counts = await workflow_queue.card_counts(session, ctx.user, filters.query, now=ctx.now)
    cadres = await lookups.staff_names(session, (i.cadre_id for i in result.items))
    cohort = filters.query.cohort
    found = await marks.marks(session, request, ctx, [i.id for i in result.items])
    return dict(
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
        cohort=cohort,
        metric_label=cohort_filter.METRIC_LABELS.get(cohort.metric or "received", "")
        if cohort
        else "",
        total=await workflow_queue.total(session, ctx.user, filters.query, now=ctx.now)
        if cohort or filters.query.unit_id or filters.query.category_code
        else None,
        marks=found,
        ledger_link="/console/ledger.xlsx" + filters.link().removeprefix("/console/queue"),
    )


async def _full(
    request: Request, ctx: ConsoleContext, session: SessionDep, values: dict[str, Any], **extra: Any
) -> Response:
    return render(
        request,
        "queue.html",
        ctx=ctx,
        statuses=lookups.STATUS_CHOICES,
        regions=await lookups.regions_in_reach(session, ctx.user),
        categories=await lookups.categories(session),
        may_sign=ctx.user.role in SIGNERS,
        may_search_identity=ctx.user.role in IDENTITY_SEARCHERS,
        **{"search": {"name": "", "phone": ""}, "searched": False, **values, **extra},
    )


@router.get("/queue")
async def queue_page(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    filters = parse_filters(request.query_params, ctx)
    cursor = request.query_params.get("cursor") or None
    if cursor is not None and len(cursor) > 80:
        raise BadRequest("翻页游标无效，请从第一页重新加载")
    values = await _page(request, ctx, session, filters, cursor=cursor)
    if request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == (
        "queue-results"
    ):
        return render(request, "queue_results.html", ctx=ctx, **values)
    return await _full(request, ctx, session, values)


def _identity_search(form: FormData) -> tuple[str, str]:
    name, phone = field(form, "name"), field(form, "phone")
    if not name and not phone:
        raise BadRequest("请填写反映人姓名或联系电话")
    if name and (len(name) > 32 or not name.isprintable()):
        raise BadRequest("姓名不超过 32 个字，且不能含控制字符")
    if phone and not (phone.isascii() and _PHONE.fullmatch(phone)):
        raise BadRequest("联系电话格式不正确")
    return name, phone


@router.post("/queue/search")
async def identity_search(
    request: Request, ctx: Ctx, session: SessionDep, form: CsrfForm
) -> Response:
    """By the filer's name or phone, in a POST body: the answer is a page, never
    a URL with identity in it. A phone finds protected cases too (blind index;
    each such find is recorded as a read of the filer's identity); a name finds
    ordinary cases only, since a protected filer's name is sealed."""
    if ctx.user.role not in IDENTITY_SEARCHERS:
        raise Forbidden("您的角色不能按反映人姓名或电话查找案件")
    name, phone = _identity_search(form)
    base = parse_filters(form, ctx)
    query = dataclass_replace(base.query, name=name or None, phone=phone or None)
    filters = Filters(base.values, query)
    values = await _page(request, ctx, session, filters, cursor=None, limit=SEARCH_LIMIT)
    values.update(next_link=None, first_link=None, ledger_link=None)
    return await _full(
        request,
        ctx,
        session,
        values,
        search={"name": name, "phone": phone},
        searched=True,
        search_limit=SEARCH_LIMIT,
    )


@router.post("/queue/seen")
async def mark_seen(request: Request, ctx: Ctx, form: CsrfForm) -> Response:
    """ "全部标为已看": the marks start again from now (see ``marks``)."""
    response = redirect(
        request, safe_next(field(form, "next"), "/console/queue"), flash=("ok", "已全部标为已看")
    )
    set_cookie(response, request, ctx.settings, marks.SEEN_COOKIE, marks.seen_value(ctx))
    return response
