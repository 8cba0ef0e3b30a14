"""Rankings (红榜 / 黑榜) and alerts, read from the per-unit monthly rollup.

Every unit with cases in the period is listed in ``units`` with the reasons it
is or is not on each list, so an empty red list explains itself. The rules:

- a unit ranks when it received at least ``min_cases`` cases in the period;
- a warning is a black-list criterion: satisfaction or on-time rate below the
  floor, a fake closure found at a callback, a reopen rate above 10%;
- red list: the best scores among units with no warning that closed at least
  one case (a unit with nothing closed yet has nothing to praise);
- black list: units with a warning, worst score first.

Red-list places go to the best *eligible* units, not to whichever of the top
five happen to be clean: a list drawn from the top five overall was empty as
soon as each of them had one warning.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, CompoundSelect, and_, bindparam, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest
from app.duplicates import similarity
from app.models import (
    Complaint,
    ComplaintMerge,
    Rating,
    StatsDaily,
    StatsOpenDue,
    StatsRecentCluster,
    StatsRecentWindow,
    StatsUnitMonth,
)
from app.stats import projector, recent, service
from app.stats.schemas import Alert, Figures, RankedUnit, Rankings
from app.taxonomy import service as taxonomy_service

TZ = ZoneInfo("Asia/Shanghai")
ON_TIME_FLOOR = 0.8
REOPEN_CEILING = 0.1
DEFAULT_SATISFACTION = 0.8  # the score's satisfaction part when nobody rated


def score(f: Figures) -> float:
    """Composite for ranking: closure, on-time and satisfaction count for, reopening against."""
    parts = [
        (f.closure_rate or 0.0) * 0.3,
        (f.on_time_rate or 0.0) * 0.3,
        (f.satisfaction_rate if f.satisfaction_rate is not None else DEFAULT_SATISFACTION) * 0.3,
        (1 - (f.reopen_rate or 0.0)) * 0.1,
    ]
    return round(sum(parts), 4)


def warnings_for(f: Figures, satisfaction_floor: float) -> list[str]:
    out = []
    if f.satisfaction_rate is not None and f.satisfaction_rate < satisfaction_floor:
        out.append(f"满意率 {f.satisfaction_rate:.0%} 低于 {satisfaction_floor:.0%}")
    if f.on_time_rate is not None and f.on_time_rate < ON_TIME_FLOOR:
        out.append(f"按期办结率 {f.on_time_rate:.0%} 低于 {ON_TIME_FLOOR:.0%}")
    if f.fake_closures:
        out.append(f"回访发现虚假办结 {f.fake_closures} 件")
    if f.reopen_rate is not None and f.reopen_rate > REOPEN_CEILING:
        out.append(f"重办率 {f.reopen_rate:.0%} 高于 {REOPEN_CEILING:.0%}")
    return out


def rules(min_cases: int, list_size: int, satisfaction_floor: float) -> list[str]:
    return [
        f"参与排名：期内受理不少于 {min_cases} 件的单位（按受理日统计，每件只计一次）",
        "综合得分 = 办结率×30% + 按期办结率×30% + 满意率×30%（无人评价按 80% 计）"
        " + (1 − 重办率)×10%",
        f"预警：满意率低于 {satisfaction_floor:.0%}、按期办结率低于 {ON_TIME_FLOOR:.0%}、"
        f"回访发现虚假办结、重办率高于 {REOPEN_CEILING:.0%}",
        f"红榜：无预警且期内有办结案件的单位中，综合得分最高的 {list_size} 个",
        f"黑榜：有预警的单位中，综合得分最低的 {list_size} 个",
    ]


def draw_lists(
    units: list[RankedUnit], *, min_cases: int, list_size: int
) -> tuple[list[RankedUnit], list[RankedUnit], list[RankedUnit]]:
    """(red, black, all units in order), filling each unit's rank, list and reasons.

    Pure: the reasons are the same rules the lists are drawn by, stated per unit.
    """
    ranked = sorted(
        (u for u in units if u.figures.received >= min_cases),
        key=lambda u: (-(u.score or 0.0), u.unit_id),
    )
    unranked = sorted(
        (u for u in units if u.figures.received < min_cases),
        key=lambda u: (-u.figures.received, u.unit_id),
    )
    for i, u in enumerate(ranked, start=1):
        u.rank = i
    eligible = [u for u in ranked if not u.warnings and u.figures.closed > 0]
    red = eligible[:list_size]
    warned = sorted((u for u in ranked if u.warnings), key=lambda u: (u.score or 0.0, u.unit_id))
    black = warned[:list_size]
    for u in red:
        u.listed = "red"
    for u in black:
        u.listed = "black"
    n = len(ranked)
    for u in ranked:
        head = f"综合得分 {u.score:.2f}，在 {n} 个参与排名的单位中排第 {u.rank} 名"
        if u.listed == "red":
            place = eligible.index(u) + 1
            u.reasons = [f"{head}；无预警，且有办结案件", f"上红榜（第 {place} 位）"]
        elif u.warnings:
            u.reasons = [head, *(f"预警：{w}" for w in u.warnings), "有预警，不上红榜"]
            if u.listed == "black":
                u.reasons.append(f"上黑榜（有预警的单位中得分倒数第 {warned.index(u) + 1} 位）")
            else:
                u.reasons.append(f"黑榜只列有预警的单位中得分最低的 {list_size} 个，本单位未列入")
        elif u.figures.closed == 0:
            u.reasons = [head, "期内受理的案件尚无办结，不上红榜", "无预警，不上黑榜"]
        else:
            u.reasons = [
                head,
                f"无预警，但在无预警且有办结的单位中排第 {eligible.index(u) + 1} 位，"
                f"红榜只列前 {list_size} 个",
                "无预警，不上黑榜",
            ]
    for u in unranked:
        u.reasons = [
            f"期内受理 {u.figures.received} 件，少于 {min_cases} 件，不参与排名，不上红榜或黑榜"
        ]
    return red, black, ranked + unranked


async def rankings(
    session: AsyncSession,
    *,
    scope: service.Scope,
    date_from: date,
    date_to: date,
    now: datetime,
    min_cases: int = 5,
    list_size: int = 5,
    satisfaction_floor: float = 0.8,
    cluster_n: int = 5,
    cluster_days: int = 30,
) -> Rankings:
    if date_from > date_to:
        raise BadRequest("开始日期不能晚于结束日期")
    where = and_(
        where_unit(scope), service.in_period(StatsUnitMonth, date_from, date_to, monthly=True)
    )
    by_unit = dict(
        (k[0], m)
        for k, m in await service.sum_rows(session, where, [StatsUnitMonth.unit_id], StatsUnitMonth)
    )
    overdue = await service.overdue_counts(session, scope, scope.prefix, now, StatsOpenDue.unit_id)
    # A unit with only an overdue backlog received nothing in the period: it is
    # listed too, with why it does not rank.
    uids = sorted({*by_unit, *overdue})
    names = await service.labels(session, units=uids, towns=[])
    units: list[RankedUnit] = []
    for uid in uids:
        f = service.figures(by_unit.get(uid, {}), overdue.get(uid, 0))
        enough = f.received >= min_cases
        units.append(
            RankedUnit(
                unit_id=uid,
                unit_name=names.get(f"u{uid}", str(uid)),
                score=score(f) if enough else None,
                figures=f,
                warnings=warnings_for(f, satisfaction_floor) if enough else [],
            )
        )
    red, black, ordered = draw_lists(units, min_cases=min_cases, list_size=list_size)
    alerts = await _low_satisfaction_alerts(session, where_unit(scope), date_to, satisfaction_floor)
    alerts += await _cluster_alerts(session, scope, date_to, cluster_n, cluster_days)
    return Rankings(
        as_of=await projector.as_of(session, now),
        date_from=date_from,
        date_to=date_to,
        min_cases=min_cases,
        rules=rules(min_cases, list_size, satisfaction_floor),
        red_list=red,
        black_list=black,
        units=ordered,
        alerts=alerts,
    )


def where_unit(scope: service.Scope) -> ColumnElement[bool]:
    cond = StatsUnitMonth.county_code.startswith(
        scope.prefix[:6] if len(scope.prefix) > 6 else scope.prefix
    )
    return (
        and_(cond, StatsUnitMonth.unit_id == scope.unit_id) if scope.unit_id is not None else cond
    )


async def _low_satisfaction_alerts(
    session: AsyncSession, unit_where: ColumnElement[bool], date_to: date, floor: float
) -> list[Alert]:
    """Units below the floor in each of the last two complete months."""
    this_month = service.month_start(date_to)
    m1 = service.month_start(this_month - timedelta(days=1))
    m2 = service.month_start(m1 - timedelta(days=1))
    monthly: dict[int, dict[date, dict[str, int]]] = defaultdict(dict)
    rows = await service.sum_rows(
        session,
        and_(unit_where, StatsUnitMonth.month.in_((m2, m1))),
        [StatsUnitMonth.unit_id, StatsUnitMonth.month],
        StatsUnitMonth,
    )
    for (uid, month), m in rows:
        monthly[uid][month] = m
    flagged = [
        uid
        for uid, months in sorted(monthly.items())
        if all(
            m in months
            and (r := service.figures(months[m]).satisfaction_rate) is not None
            and r < floor
            for m in (m2, m1)
        )
    ]
    if not flagged:
        return []
    # Months are months of receipt (as in every figure): the cases behind the
    # alert are the flagged units' cases received then whose latest verdict is
    # unsatisfied.
    start = datetime.combine(m2, datetime.min.time(), TZ)
    end = datetime.combine(this_month, datetime.min.time(), TZ)
    found = await session.execute(
        select(Complaint.unit_id, Rating.complaint_id, Rating.satisfaction)
        .join(Complaint, Complaint.id == Rating.complaint_id)
        .where(
            Complaint.unit_id.in_(flagged),
            Complaint.received_at >= start,
            Complaint.received_at < end,
        )
        .order_by(Complaint.received_at, Rating.complaint_id, Rating.round)
    )
    latest: dict[str, tuple[int, str]] = {}
    for uid, cid, verdict in found:
        latest[cid] = (uid, verdict)
    ids: dict[int, list[str]] = defaultdict(list)
    for cid, (uid, verdict) in latest.items():
        if verdict == "unsatisfied":
            ids[uid].append(cid)
    alerts = [
        Alert(
            kind="low_satisfaction",
            title=f"连续两个月满意率低于 {floor:.0%}（{m2:%Y-%m}、{m1:%Y-%m}）",
            unit_id=uid,
            complaint_ids=list(dict.fromkeys(ids[uid])),
        )
        for uid in flagged
    ]
    return alerts


MAX_CLUSTERS = 20
# Looser than a duplicate: a class case is the same kind of trouble, not the same pipe.
CLUSTER_SIMILARITY = 0.25
CASES_PER_ALERT = 50


@functools.cache
def _first_cases(groups: int) -> CompoundSelect[str, str, str, str]:
    """The first cases of each of ``groups`` clusters, each read off
    ix_complaints_item_town_received and cut there, so a cluster of thousands
    costs no more than one of five. Built once per number of groups: building
    the twenty-way union was a fifth of the request's CPU at 1M cases."""
    return union_all(
        *(
            select(
                select(
                    Complaint.id, Complaint.item_code, Complaint.township_code, Complaint.content
                )
                .where(
                    Complaint.item_code == bindparam(f"item_{k}"),
                    Complaint.township_code == bindparam(f"town_{k}"),
                    Complaint.received_at >= bindparam("lo"),
                    Complaint.received_at < bindparam("hi"),
                    Complaint.id.not_in(select(ComplaintMerge.child_id)),
                )
                .order_by(Complaint.received_at, Complaint.id)
                .limit(CASES_PER_ALERT)
                .subquery()
            )
            for k in range(groups)
        )
    )


async def _largest_recent(
    session: AsyncSession, scope: service.Scope, n: int, last_day: date
) -> list[tuple[str, str, int]] | None:
    """The largest groups of the 30 days ending ``last_day`` off the running
    total (``app/stats/recent.py``), read in index order, at most MAX_CLUSTERS
    rows; None when the total counts another window (a past report, or the
    projector not yet past midnight). The window's day is checked in the same
    statement: a read session runs each statement on its own, and the window
    may move between two."""
    t = StatsRecentCluster
    unit = scope.unit_id if scope.unit_id is not None else recent.ALL_UNITS
    found = (
        await session.execute(
            select(t.item_code, t.township_code, t.received)
            .join(StatsRecentWindow, recent.current(last_day))
            .where(t.unit_id == unit, t.received >= n, t.township_code.startswith(scope.prefix))
            .order_by(t.received.desc(), t.item_code, t.township_code)
            .limit(MAX_CLUSTERS)
        )
    ).all()
    if not found and await recent.counted_through(session) != last_day:
        return None
    return [(str(i), str(town), int(c)) for i, town, c in found]


async def _largest_summed(
    session: AsyncSession, scope: service.Scope, start: date, end: date, n: int
) -> list[tuple[str, str, int]]:
    """The same, summed from ``stats_daily`` for any other window."""
    where = and_(
        StatsDaily.township_code.startswith(scope.prefix),
        StatsDaily.day >= start,
        StatsDaily.day <= end,
    )
    if scope.unit_id is not None:
        where = and_(where, StatsDaily.unit_id == scope.unit_id)
    total = func.sum(StatsDaily.received)
    found = await session.execute(
        select(StatsDaily.item_code, StatsDaily.township_code, total)
        .where(where)
        .group_by(StatsDaily.item_code, StatsDaily.township_code)
        .having(total >= n)
        .order_by(total.desc(), StatsDaily.item_code, StatsDaily.township_code)
        .limit(MAX_CLUSTERS)
    )
    return [(str(i), str(town), int(c)) for i, town, c in found.all()]


async def _cluster_alerts(
    session: AsyncSession, scope: service.Scope, date_to: date, n: int, days: int
) -> list[Alert]:
    """类案: at least n complaints on one item in one township within the window;
    the largest clusters first, at most MAX_CLUSTERS, their cases in one query.

    Within an item and township the cases are then grouped by text similarity
    (app/duplicates/similarity.py): each group of at least n look-alike
    reports is its own alert, since "ten reports of one broken pipe" and "ten
    different water complaints" call for different fixes. An item and
    township with no such group keeps its one alert by item. Merged
    duplicates count once: the rollup drops them, the case lists skip them."""
    start = date_to - timedelta(days=days - 1)
    rows = await _largest_recent(session, scope, n, date_to) if days == recent.DAYS else None
    if rows is None:
        rows = await _largest_summed(session, scope, start, date_to, n)
    if not rows:
        return []
    lo = datetime.combine(start, datetime.min.time(), TZ)
    hi = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), TZ)
    pairs = [(r[0], r[1]) for r in rows]
    params: dict[str, Any] = {"lo": lo, "hi": hi}
    for k, (item, town) in enumerate(pairs):
        params[f"item_{k}"], params[f"town_{k}"] = item, town
    cases: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for cid, item, town, content in await session.execute(_first_cases(len(pairs)), params):
        cases[(item, town)].append((cid, content))
    snap = await taxonomy_service.snapshot(session)  # the current version's names
    names = {code: snap.items[code].name for code, _ in pairs if code in snap.items}
    grouped = await asyncio.to_thread(
        lambda: {
            pair: similarity.group([t for _, t in found], CLUSTER_SIMILARITY)
            for pair, found in cases.items()
        }
    )
    alerts: list[Alert] = []
    for item, town, count in rows:
        found = cases[(item, town)]
        name = names.get(item, item)
        alike = [g for g in grouped.get((item, town), []) if len(g) >= n]
        for g in alike:
            alerts.append(
                Alert(
                    kind="cluster",
                    title=f"类案：{days} 天内同一乡镇「{name}」内容相近 {len(g)} 件",
                    item_code=item,
                    township_code=town,
                    complaint_ids=[found[i][0] for i in sorted(g)],
                )
            )
        if not alike:
            alerts.append(
                Alert(
                    kind="cluster",
                    title=f"类案：{days} 天内同一乡镇「{name}」{count} 件",
                    item_code=item,
                    township_code=town,
                    complaint_ids=[cid for cid, _ in found],
                )
            )
    return alerts
