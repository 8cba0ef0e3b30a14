"""Figures read from the rollups, not the complaints (rankings: ``ranking.py``).

"Open and overdue", which only exists now, comes from stats_open_due: open
cases by due day, summed over the days before today.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, Forbidden
from app.models import (
    Region,
    StaffUser,
    StatsCityItemMonth,
    StatsDaily,
    StatsItemMonth,
    StatsOpenDue,
    StatsTownDay,
    StatsUnitMonth,
    SupervisionUnit,
)
from app.models.enums import RegionLevel, StaffRole, UnitKind
from app.models.stats import METRICS
from app.regions.repository import PREFIX_LENGTH, prefix_of
from app.stats import projector, rollup, same_day
from app.stats.schemas import Breakdown, Figures, Overview, PublicStats
from app.taxonomy import service as taxonomy_service


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def figures(m: dict[str, int], open_overdue: int = 0) -> Figures:
    closed = m.get("closed", 0)
    rated = m.get("rated", 0)
    return Figures(
        **{
            k: m.get(k, 0)
            for k in (
                "received",
                "accepted",
                "closed",
                "closed_on_time",
                "rated",
                "satisfied",
                "basic",
                "unsatisfied",
                "reopened",
                "fake_closures",
                "unsolved",
                "closed_untimed",
            )
        },
        open_overdue=open_overdue,
        closure_rate=_ratio(closed, m.get("received", 0)),
        solved_rate=_ratio(max(closed - m.get("unsolved", 0), 0), closed),
        satisfaction_rate=_ratio(m.get("satisfied", 0) + m.get("basic", 0), rated),
        mean_score=round(m.get("score_sum", 0) / rated, 2) if rated else None,
        on_time_rate=_ratio(
            m.get("closed_on_time", 0), closed - m.get("closed_untimed", 0) + open_overdue
        ),
        reopen_rate=_ratio(m.get("reopened", 0), m.get("accepted", 0)),
        avg_handling_days=(
            round(m.get("handling_days_sum", 0) / (closed - untimed), 2)
            if (untimed := m.get("closed_untimed", 0)) < closed
            else None
        ),
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """What a caller may count: a region (by code prefix), or one unit in it."""

    prefix: str = "5117"
    unit_id: int | None = None


async def scope_filter(session: AsyncSession, user: StaffUser) -> Scope:
    if user.role is StaffRole.admin:
        return Scope()
    if user.role not in (StaffRole.supervisor, StaffRole.leader) or user.unit_id is None:
        raise Forbidden("统计数据仅向纪检监察机关开放")
    unit = await session.get(SupervisionUnit, user.unit_id)
    assert unit is not None
    if unit.kind is UnitKind.commission:
        return Scope(prefix=unit.region_code[: PREFIX_LENGTH[unit.level]])
    return Scope(prefix=unit.region_code[: PREFIX_LENGTH[unit.level]], unit_id=unit.id)


async def sum_rows(
    session: AsyncSession, where: ColumnElement[bool], group: Sequence[Any], model: Any = StatsDaily
) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    cols = [func.coalesce(func.sum(getattr(model, m)), 0) for m in METRICS]
    stmt = select(*group, *cols).select_from(model).where(where)
    if group:
        stmt = stmt.group_by(*group)
    out = []
    for row in (await session.execute(stmt)).all():
        key = tuple(row[: len(group)])
        out.append((key, {m: int(v) for m, v in zip(METRICS, row[len(group) :], strict=True)}))
    return out


def _merge(rows: Iterable[tuple[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    merged: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for key, m in rows:
        bucket = merged[key]
        for k, v in m.items():
            bucket[k] += v
    return merged


async def overdue_counts(
    session: AsyncSession,
    scope: Scope,
    prefix: str,
    now: datetime,
    group: Any | None = None,
) -> dict[Any, int]:
    """Open cases due before today, from stats_open_due (see its docstring)."""
    cond = and_(
        StatsOpenDue.due_day < rollup.local_date(now),
        StatsOpenDue.township_code.startswith(prefix),
    )
    if scope.unit_id is not None:
        cond = and_(cond, StatsOpenDue.unit_id == scope.unit_id)
    total = func.coalesce(func.sum(StatsOpenDue.open), 0)
    if group is None:
        n = (await session.execute(select(total).where(cond))).scalar_one()
        return {None: int(n)}
    rows = (await session.execute(select(group, total).where(cond).group_by(group))).all()
    return {k: int(v) for k, v in rows if v}


async def _overdue_by(
    session: AsyncSession, scope: Scope, prefix: str, now: datetime
) -> tuple[dict[Any, int], dict[Any, int], dict[Any, int]]:
    """Overdue by unit, by item and by township. PostgreSQL counts all three in
    one pass (GROUPING SETS); SQLite, which lacks them, in three."""
    cols = (StatsOpenDue.unit_id, StatsOpenDue.item_code, StatsOpenDue.township_code)
    if session.get_bind().dialect.name != "postgresql":
        unit, item, town = [await overdue_counts(session, scope, prefix, now, c) for c in cols]
        return unit, item, town
    cond = and_(
        StatsOpenDue.due_day < rollup.local_date(now),
        StatsOpenDue.township_code.startswith(prefix),
    )
    if scope.unit_id is not None:
        cond = and_(cond, StatsOpenDue.unit_id == scope.unit_id)
    stmt = (
        select(*cols, func.sum(StatsOpenDue.open))
        .where(cond)
        .group_by(func.grouping_sets(*(tuple_(c) for c in cols)))
    )
    out: tuple[dict[Any, int], dict[Any, int], dict[Any, int]] = ({}, {}, {})
    for unit_id, item_code, township, n in (await session.execute(stmt)).all():
        if not n:
            continue
        key, i = (unit_id, 0) if unit_id is not None else (item_code, 1)
        if unit_id is None and item_code is None:
            key, i = township, 2
        out[i][key] = int(n)
    return out


def _month_key(session: AsyncSession, day: Any) -> Any:
    """'YYYY-MM' of a date column, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(day, "YYYY-MM")
    return func.strftime("%Y-%m", day)


def rollup_prefix(code: str) -> str:
    """The code prefix the rollups can answer for: they are kept per township,
    so a village counts as its township (named as such in public figures)."""
    return prefix_of(code)[: PREFIX_LENGTH[RegionLevel.township]]


def month_start(d: date) -> date:
    return d.replace(day=1)


def in_period(
    model: Any, date_from: date | None, date_to: date | None, *, monthly: bool
) -> ColumnElement[bool]:
    col = model.month if monthly else model.day
    conds: list[ColumnElement[bool]] = []
    if date_from:
        conds.append(col >= (month_start(date_from) if monthly else date_from))
    if date_to:
        conds.append(col <= (month_start(date_to) if monthly else date_to))
    return and_(true(), *conds)


def counted_prefix(scope: Scope, region_code: str | None) -> str:
    """The region asked for, intersected with what the caller may count."""
    prefix = scope.prefix
    if region_code:
        asked = rollup_prefix(region_code)
        if asked.startswith(prefix):
            prefix = asked
        elif not prefix.startswith(asked):
            raise Forbidden("该区域不在本单位的统计范围内")
    return prefix


def whole_months(scope: Scope, prefix: str) -> bool:
    """Whether the unit and item breakdowns read the month tables, and so count
    whole months of receipt (a region-wide view); the totals, months and
    townships always count the days of the period."""
    return scope.unit_id is None and len(prefix) <= 6


def city_wide(prefix: str) -> bool:
    """Whether a region-wide view covers the whole city: every county's rows."""
    return len(prefix) <= PREFIX_LENGTH[RegionLevel.city]


async def item_month_rows(
    session: AsyncSession, prefix: str, date_from: date | None, date_to: date | None
) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    """Whole months by item for a region-wide view.

    The whole city reads stats_city_item_month (item × month, at most 517 rows
    a month), a county stats_item_month (item × county × month). Both are sums
    of the same fine keys (rollup.coarse_keys), and every county lies in the
    city, so the city's rows equal the sum over its counties: the city table
    only saves reading seven rows per item and month (bench/README.md).
    """
    if city_wide(prefix):
        return await sum_rows(
            session,
            in_period(StatsCityItemMonth, date_from, date_to, monthly=True),
            [StatsCityItemMonth.item_code],
            StatsCityItemMonth,
        )
    return await sum_rows(
        session,
        and_(
            StatsItemMonth.county_code.startswith(prefix),
            in_period(StatsItemMonth, date_from, date_to, monthly=True),
        ),
        [StatsItemMonth.item_code],
        StatsItemMonth,
    )


async def overview(
    session: AsyncSession,
    *,
    scope: Scope,
    region_code: str | None,
    date_from: date | None,
    date_to: date | None,
    now: datetime,
) -> Overview:
    """Each breakdown reads the smallest rollup that answers it exactly.

    Region-wide views read township × day (totals, months, regions) and the
    month tables (units; items and categories, in whole months; for the whole
    city, item × month without counties). A single
    unit's view, or a township-level region, reads the fine table, which is
    small for one unit or township.
    """
    if date_from and date_to and date_from > date_to:
        raise BadRequest("开始日期不能晚于结束日期")
    prefix = counted_prefix(scope, region_code)
    fine = not whole_months(scope, prefix)
    if fine:
        where = and_(
            StatsDaily.township_code.startswith(prefix),
            in_period(StatsDaily, date_from, date_to, monthly=False),
        )
        if scope.unit_id is not None:
            where = and_(where, StatsDaily.unit_id == scope.unit_id)
        month_town = await sum_rows(
            session, where, [_month_key(session, StatsDaily.day), StatsDaily.township_code]
        )
        unit_rows = await sum_rows(session, where, [StatsDaily.unit_id])
        item_rows = await sum_rows(session, where, [StatsDaily.item_code])
    else:
        town_where = and_(
            StatsTownDay.township_code.startswith(prefix),
            in_period(StatsTownDay, date_from, date_to, monthly=False),
        )
        month_town = await sum_rows(
            session,
            town_where,
            [_month_key(session, StatsTownDay.day), StatsTownDay.township_code],
            StatsTownDay,
        )
        unit_rows = await sum_rows(
            session,
            and_(
                StatsUnitMonth.county_code.startswith(prefix),
                in_period(StatsUnitMonth, date_from, date_to, monthly=True),
            ),
            [StatsUnitMonth.unit_id],
            StatsUnitMonth,
        )
        item_rows = await item_month_rows(session, prefix, date_from, date_to)
    overdue_unit, overdue_item, overdue_town = await _overdue_by(session, scope, prefix, now)
    overdue_total = sum(overdue_town.values())
    # Summed in SQL to month × township (at most 13 × 42 rows): a year of
    # township-days is 15k rows, too many to pull into Python (bench/).
    totals = _merge(("all", m) for _, m in month_town)
    months = _merge((str(k[0]), m) for k, m in month_town)
    towns = _merge((k[1], m) for k, m in month_town)
    items = _merge((k[0], m) for k, m in item_rows)
    cats = _merge((k[0][:2], m) for k, m in item_rows)
    overdue_cat: dict[str, int] = defaultdict(int)
    for code, n in overdue_item.items():
        overdue_cat[str(code)[:2]] += n
    # A unit, item or township can hold overdue cases with nothing received or
    # closed in the period (an escalated case, an old backlog): it still shows.
    empty = dict.fromkeys(METRICS, 0)
    seen_units = {k[0] for k, _ in unit_rows}
    unit_rows += [((u,), dict(empty)) for u in overdue_unit if u not in seen_units]
    for code in overdue_item:
        items.setdefault(code, dict(empty))
        cats.setdefault(str(code)[:2], dict(empty))
    for town in overdue_town:
        towns.setdefault(town, dict(empty))
    names = await labels(session, units=[k[0] for k, _ in unit_rows], towns=list(towns))
    tx = await taxonomy_service.snapshot(session)
    cat_names = {c.code: c.name for c in tx.document.categories}
    return Overview(
        as_of=await projector.as_of(session, now),
        region_code=region_code,
        date_from=date_from,
        date_to=date_to,
        totals=figures(totals.get("all", {}), overdue_total),
        by_month=[Breakdown(key=k, label=k, figures=figures(m)) for k, m in sorted(months.items())],
        by_category=[
            Breakdown(key=k, label=cat_names.get(k, k), figures=figures(m, overdue_cat.get(k, 0)))
            for k, m in sorted(cats.items())
        ],
        by_item=[
            Breakdown(
                key=k,
                label=tx.items[k].name if k in tx.items else k,
                figures=figures(m, overdue_item.get(k, 0)),
            )
            for k, m in sorted(items.items())
        ],
        by_unit=[
            Breakdown(
                key=str(k[0]),
                label=names.get(f"u{k[0]}", str(k[0])),
                figures=figures(m, overdue_unit.get(k[0], 0)),
            )
            for k, m in sorted(unit_rows)
        ],
        by_region=[
            Breakdown(key=k, label=names.get(k, k), figures=figures(m, overdue_town.get(k, 0)))
            for k, m in sorted(towns.items())
        ],
        same_day_feedback=await same_day.same_day_feedback(
            session,
            prefix=prefix,
            unit_id=scope.unit_id,
            date_from=date_from,
            date_to=date_to,
        ),
    )


async def labels(
    session: AsyncSession, *, units: Sequence[int], towns: Sequence[str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    if units:
        for uid, name in (
            await session.execute(
                select(SupervisionUnit.id, SupervisionUnit.name).where(
                    SupervisionUnit.id.in_(units)
                )
            )
        ).all():
            out[f"u{uid}"] = name
    if towns:
        for code, name in (
            await session.execute(
                select(Region.code, Region.full_name).where(Region.code.in_(towns))
            )
        ).all():
            out[code] = name
    return out


async def public(session: AsyncSession, region_code: str | None, *, now: datetime) -> PublicStats:
    code = region_code or "511700000000"
    region = await session.get(Region, code)
    if region is None:
        from app.regions.service import RegionNotFound

        raise RegionNotFound(f"区划 {code} 不存在")
    if region.level is RegionLevel.village and region.parent_code:
        # The answer names the township whose figures these are.
        region = await session.get(Region, region.parent_code) or region
    where = StatsTownDay.township_code.startswith(rollup_prefix(region.code))
    totals = _merge(("all", m) for _, m in await sum_rows(session, where, [], StatsTownDay))
    f = figures(totals.get("all", {}))
    return PublicStats(
        region_code=region.code,
        region_name=region.full_name,
        received=f.received,
        closed=f.closed,
        closure_rate=f.closure_rate,
        solved_rate=f.solved_rate,
        satisfaction_rate=f.satisfaction_rate,
        as_of=await projector.as_of(session, now),
    )
