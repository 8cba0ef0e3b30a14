"""The dashboard (统计分析) for leaders and commissions.

Figures come from the services behind ``/staff/stats/overview`` and
``/staff/stats/rankings`` with the same scope rule (``stats.service.scope_filter``),
so the page shows exactly what the API answers for the same region and period.
Each figure links to the queue filtered to the cases it counts
(``workflow.cohort``: the same cohort rule in SQL), and the ledger button
exports that same filter through the ledger service.

Charts are SVG written by the template from the geometry computed here: no
chart library, nothing loaded from elsewhere, readable without JavaScript.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response

from app.console import lookups
from app.console.dependencies import ConsoleContext, ReadingCtx
from app.console.queue import parse_day, parse_filters
from app.console.routing import console_router
from app.console.templating import render
from app.core.deps import ReadSessionDep, SessionDep
from app.core.errors import BadRequest
from app.ledger import service as ledger_service
from app.ledger.router import XLSX
from app.models import Complaint, Region
from app.models.enums import RegionLevel
from app.stats import projector, ranking, rollup
from app.stats import service as stats_service
from app.stats.schemas import Breakdown, Figures
from app.workflow import cohort as cohort_filter
from app.workflow import reads
from app.workflow import scope as workflow_scope

router = console_router(prefix="/console")

TILES = (
    "received",
    "accepted",
    "closed",
    "closed_on_time",
    "open_overdue",
    "rated",
    "satisfied",
    "basic",
    "unsatisfied",
    "reopened",
    "fake_closures",
    "unsolved",
)
RATES = (
    ("closure_rate", "办结率"),
    ("on_time_rate", "按期办结率"),
    ("solved_rate", "解决率"),
    ("satisfaction_rate", "满意率"),
    ("reopen_rate", "重办率"),
)
ALERT_KINDS = {"low_satisfaction": "满意率预警", "cluster": "类案预警"}


@dataclass(frozen=True, slots=True)
class Period:
    """The dashboard's filter: a region (county or township; a village counts
    as its township, as in the rollups) and a period of receipt days."""

    region_code: str
    date_from: date
    date_to: date

    def params(self, **extra: str | int | None) -> dict[str, str]:
        base: dict[str, str | int | None] = {
            "region_code": self.region_code,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            **extra,
        }
        return {k: str(v) for k, v in base.items() if v not in (None, "")}

    def queue_link(self, **extra: str | int | None) -> str:
        """The queue holding the cases behind a figure (``metric``), narrowed
        to a breakdown (``unit_id``, ``category``, a township, a month)."""
        params = self.params(**extra)
        if params.get("metric") == "received":
            params.pop("metric")
        return "/console/queue?" + urlencode(params)

    def whole_months(self) -> Period:
        """The period widened to whole months: what the unit and category
        breakdowns count in a region-wide view (``stats.service.whole_months``)."""
        start = self.date_from.replace(day=1)
        end = (self.date_to.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return Period(self.region_code, start, end)

    def month_link(self, month: str, metric: str) -> str:
        start = date.fromisoformat(month + "-01")
        end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        lo, hi = max(start, self.date_from), min(end, self.date_to)
        return self.queue_link(metric=metric, **{"from": lo.isoformat(), "to": hi.isoformat()})


def township_code(code: str) -> str:
    """A region code as the rollups answer for it (see ``stats.service.rollup_prefix``)."""
    return stats_service.rollup_prefix(code).ljust(12, "0")


def parse_period(request: Request, today: date) -> Period:
    p = request.query_params
    region = (p.get("region_code") or "").strip()
    if region and not (len(region) == 12 and region.isascii() and region.isdigit()):
        raise BadRequest("区划代码为 12 位数字")
    start = today.replace(day=1)
    for _ in range(11):  # twelve months, this one included
        start = (start - timedelta(days=1)).replace(day=1)
    date_from = parse_day((p.get("from") or "").strip(), "开始日期") or start
    date_to = parse_day((p.get("to") or "").strip(), "结束日期") or today
    if date_from > date_to:
        raise BadRequest("开始日期不能晚于结束日期")
    return Period(township_code(region) if region else "", date_from, date_to)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    width: float  # percent of the chart's width
    link: str
    extra: str = ""


def bars(
    rows: list[Breakdown], link: Any, *, limit: int = 15, names: dict[str, str] | None = None
) -> list[Bar]:
    """Horizontal bars of "received", largest first, each linked to its cases
    (``names``: shorter labels than the breakdown's, e.g. a township's own name)."""
    top = sorted(rows, key=lambda b: (-b.figures.received, b.key))[:limit]
    peak = max((b.figures.received for b in top), default=0) or 1
    return [
        Bar(
            (names or {}).get(b.key, b.label),
            b.figures.received,
            round(100 * b.figures.received / peak, 1),
            link(b.key),
            f"办结 {b.figures.closed}",
        )
        for b in top
    ]


@dataclass(frozen=True, slots=True)
class MonthColumn:
    month: str
    received: int
    closed: int
    x: float
    h_received: float
    h_closed: float
    link_received: str
    link_closed: str


CHART_H = 160.0


def month_columns(period: Period, rows: list[Breakdown]) -> list[MonthColumn]:
    """Every month of the period, empty ones too (a gap is information)."""
    by_month = {b.key: b.figures for b in rows}
    months: list[str] = []
    cur = period.date_from.replace(day=1)
    while cur <= period.date_to and len(months) < 120:
        months.append(cur.strftime("%Y-%m"))
        cur = (cur + timedelta(days=32)).replace(day=1)
    peak = max((by_month[m].received for m in months if m in by_month), default=0) or 1
    out = []
    for i, m in enumerate(months):
        f = by_month.get(m, Figures())
        out.append(
            MonthColumn(
                month=m,
                received=f.received,
                closed=f.closed,
                x=i * 48.0,
                h_received=round(CHART_H * f.received / peak, 1),
                h_closed=round(CHART_H * f.closed / peak, 1),
                link_received=period.month_link(m, "received"),
                link_closed=period.month_link(m, "closed"),
            )
        )
    return out


async def alert_cases(
    session: ReadSessionDep, ctx: ReadingCtx, ids: set[str]
) -> dict[str, tuple[str, str]]:
    """Tracking number and status of the alerts' cases that this user may open."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Complaint.id, Complaint.tracking_no, Complaint.status).where(
            Complaint.id.in_(ids), await workflow_scope.visible(session, ctx.user)
        )
    )
    return {str(i): (str(t), s.label) for i, t, s in rows}


async def short_names(session: SessionDep, codes: list[str]) -> dict[str, str]:
    """Townships by their own name (the breakdown carries the full one)."""
    if not codes:
        return {}
    rows = await session.execute(select(Region.code, Region.name).where(Region.code.in_(codes)))
    return {str(c): str(n) for c, n in rows.all()}


@router.get("/dashboard")
async def dashboard(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    today = rollup.local_date(ctx.now)
    period = parse_period(request, today)
    scope = await stats_service.scope_filter(session, ctx.user)  # 403 for the others
    overview = await stats_service.overview(
        session,
        scope=scope,
        region_code=period.region_code or None,
        date_from=period.date_from,
        date_to=period.date_to,
        now=ctx.now,
    )
    ranks = await ranking.rankings(
        session, scope=scope, date_from=period.date_from, date_to=period.date_to, now=ctx.now
    )
    # Unit and category breakdowns may count whole months: their links too.
    coarse = stats_service.whole_months(
        scope, stats_service.counted_prefix(scope, period.region_code or None)
    )
    months_period = period.whole_months() if coarse else period
    cases = await alert_cases(session, ctx, {i for a in ranks.alerts for i in a.complaint_ids})
    regions = [
        r
        for r in await lookups.regions_in_reach(session, ctx.user, villages=False)
        if r.level in (RegionLevel.city, RegionLevel.county, RegionLevel.township)
    ]
    return render(
        request,
        "dashboard.html",
        ctx=ctx,
        period=period,
        overview=overview,
        totals=overview.totals,
        tiles=[(m, cohort_filter.METRIC_LABELS[m]) for m in TILES],
        rates=RATES,
        months=month_columns(period, overview.by_month),
        chart_h=CHART_H,
        by_unit=bars(overview.by_unit, lambda k: months_period.queue_link(unit_id=k)),
        by_category=bars(overview.by_category, lambda k: months_period.queue_link(category=k)),
        months_period=months_period,
        ranks_period=period.whole_months(),  # rankings read the month table
        coarse=coarse,
        by_town=bars(
            overview.by_region,
            lambda k: period.queue_link(region_code=k),
            names=await short_names(session, [b.key for b in overview.by_region]),
        ),
        ranks=ranks,
        alert_kinds=ALERT_KINDS,
        cases=cases,
        regions=regions,
        ledger_link="/console/ledger.xlsx?" + urlencode(period.params()),
        lag_seconds=statistics_lag(overview.as_of, ctx),
    )


def statistics_lag(as_of: datetime | None, ctx: ConsoleContext) -> int | None:
    """Seconds the figures trail the case log, when that is worth telling the
    reader (``projector.worth_warning``, the rule ``/readyz`` uses)."""
    if as_of is None:
        return None
    lag = (ctx.now - as_of).total_seconds()
    return int(lag) if projector.worth_warning(lag, ctx.settings) else None


@router.get("/ledger.xlsx")
async def ledger(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    """The register (台账) of exactly the queue's current filter, a dashboard
    figure's included: the ledger service the API's ``/staff/ledger.xlsx`` uses."""
    filters = parse_filters(request.query_params, ctx)
    path, found = await ledger_service.write_ledger(
        session, ctx.user, filters.query, now=ctx.now, settings=ctx.settings
    )
    await reads.record(request, ctx.user, found, now=ctx.now, made=path)
    return FileResponse(
        path,
        media_type=XLSX,
        headers={
            "Content-Disposition": "attachment; filename*=UTF-8''"
            + quote(f"台账-{ctx.now:%Y%m%d}.xlsx")
        },
        background=BackgroundTask(os.unlink, path),
    )
