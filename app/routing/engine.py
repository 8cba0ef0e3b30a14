"""Routing (分流转办) as data plus a pure function.

``route()`` sees no database: the service hands it the item, the region chain
of the complaint, the supervision units of that chain, administrators'
overrides and the cadres, and gets back who handles the case, by when, and a
trace in Chinese of every reason. The rules (DOMAIN.md, seeds 000/001):

* village- and township-scope items go to the township/street committee;
* county- and city-scope items go to the resident group (派驻纪检监察组) that
  oversees the owning department at that level;
* an accusation (举报) against an official of some level is supervised one
  level up, never by that level itself;
* an administrator's override for (item, region or an ancestor) wins, the
  most specific one first, unless it breaks the accusation rule;
* the designated cadre for that item in that unit, else the least-loaded
  active cadre;
* acceptance and handling deadlines in Chinese working days.

No silent defaults: when a needed unit does not exist the function raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.models.enums import ItemClass, RegionLevel, Tier, UnitKind
from app.routing.calendar import WorkCalendar


class RoutingError(Exception):
    """No unit can lawfully take this complaint; the message says why."""


@dataclass(frozen=True, slots=True)
class RouteItem:
    code: str
    name: str
    klass: ItemClass
    scope: RegionLevel
    department_code: str
    department_name: str
    group_code: str
    tier: Tier
    time_limit_days: int


@dataclass(frozen=True, slots=True)
class RegionNode:
    code: str
    name: str
    level: RegionLevel


@dataclass(frozen=True, slots=True)
class RegionChain:
    """The complaint's region and its ancestors, city first."""

    nodes: tuple[RegionNode, ...]

    def __post_init__(self) -> None:
        levels = [n.level for n in self.nodes]
        if not levels or levels[0] is not RegionLevel.city:
            raise ValueError("a region chain starts at the city")
        if levels != list(RegionLevel)[: len(levels)]:
            raise ValueError(f"region chain levels out of order: {levels}")

    @property
    def leaf(self) -> RegionNode:
        return self.nodes[-1]

    def at(self, level: RegionLevel) -> RegionNode | None:
        return next((n for n in self.nodes if n.level is level), None)

    @property
    def codes(self) -> list[str]:
        return [n.code for n in self.nodes]

    @property
    def label(self) -> str:
        return "".join(n.name for n in self.nodes)


@dataclass(frozen=True, slots=True)
class UnitRef:
    id: int
    code: str
    name: str
    kind: UnitKind
    level: RegionLevel
    region_code: str
    group_code: str | None = None
    active: bool = True


class UnitDirectory:
    def __init__(self, units: Iterable[UnitRef]) -> None:
        self._by_id: dict[int, UnitRef] = {}
        self._by_key: dict[tuple[UnitKind, str, str | None], UnitRef] = {}
        for u in units:
            self._by_id[u.id] = u
            self._by_key[(u.kind, u.region_code, u.group_code)] = u

    def get(self, unit_id: int) -> UnitRef | None:
        return self._by_id.get(unit_id)

    def find(
        self, kind: UnitKind, region_code: str, group_code: str | None = None
    ) -> UnitRef | None:
        return self._by_key.get((kind, region_code, group_code))


@dataclass(frozen=True, slots=True)
class Override:
    id: int
    item_code: str
    region_code: str
    unit_id: int
    reason: str
    created_by: str


@dataclass(frozen=True, slots=True)
class Cadre:
    staff_id: int
    unit_id: int
    name: str
    open_cases: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True)
class RouteDecision:
    unit: UnitRef
    department_code: str
    department_region_code: str
    cadre_id: int | None
    tier: Tier
    time_limit_days: int
    accept_due_at: datetime
    due_at: datetime
    override_id: int | None
    trace: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())
    # Accusations against city officials: registered here, reported to the province.
    reports_up: bool = False


_CHINESE_LEVEL = {
    RegionLevel.city: "市级",
    RegionLevel.county: "县（区）级",
    RegionLevel.township: "乡镇（街道）级",
    RegionLevel.village: "村（社区）级",
}


def _fmt_day(at: datetime, calendar: WorkCalendar) -> str:
    return at.astimezone(calendar.tz).strftime("%Y-%m-%d")


def _skipped_days(start: datetime, end: datetime, calendar: WorkCalendar) -> int:
    """Weekdays inside the span that are holidays (so a trace can say so)."""
    a, b = calendar.local_date(start), calendar.local_date(end)
    days = (a + timedelta(days=i) for i in range(1, (b - a).days + 1))
    return sum(1 for d in days if d.weekday() < 5 and not calendar.is_workday(d))


def _supervising_unit_for_level(
    level: RegionLevel, chain: RegionChain, units: UnitDirectory
) -> tuple[UnitRef | None, str]:
    """The body at ``level`` that supervises officials of the level below."""
    node = chain.at(level)
    if node is None:
        return None, f"投诉区域 {chain.label} 不含{_CHINESE_LEVEL[level]}区划"
    kind = UnitKind.township_committee if level is RegionLevel.township else UnitKind.commission
    unit = units.find(kind, node.code)
    label = "乡镇纪委/街道纪工委" if kind is UnitKind.township_committee else "纪委监委"
    return unit, f"{node.name}{label}"


def _default_unit(
    item: RouteItem, chain: RegionChain, units: UnitDirectory, trace: list[str]
) -> UnitRef:
    if item.scope in (RegionLevel.village, RegionLevel.township):
        township = chain.at(RegionLevel.township)
        if township is None:
            raise RoutingError(
                f"事项 {item.code}「{item.name}」属{_CHINESE_LEVEL[item.scope]}事项，"
                f"须选择到乡镇（街道）或村（社区），当前区域为 {chain.label}"
            )
        unit = units.find(UnitKind.township_committee, township.code)
        if unit is None:
            raise RoutingError(
                f"{township.name} 未设置乡镇纪委/街道纪工委，无法分流事项 {item.code}"
            )
        trace.append(
            f"{_CHINESE_LEVEL[item.scope]}事项 → 由所在乡镇（街道）纪检组织监督：{unit.name}"
        )
        return unit
    node = chain.at(item.scope)
    if node is None:
        raise RoutingError(f"投诉区域 {chain.label} 不含{_CHINESE_LEVEL[item.scope]}区划")
    unit = units.find(UnitKind.resident_group, node.code, item.group_code)
    if unit is None:
        raise RoutingError(
            f"{node.name} 没有监督 {item.department_name} 的派驻纪检监察组（{item.group_code}），"
            f"无法分流事项 {item.code}"
        )
    trace.append(
        f"{_CHINESE_LEVEL[item.scope]}事项，主管部门 {node.name}{item.department_name} "
        f"→ 由派驻该部门的纪检监察组监督：{unit.name}"
    )
    return unit


def _override_for(
    item: RouteItem, chain: RegionChain, overrides: Sequence[Override]
) -> Override | None:
    depth = {code: i for i, code in enumerate(chain.codes)}
    applicable = [o for o in overrides if o.item_code == item.code and o.region_code in depth]
    if not applicable:
        return None
    # Most specific region first; among equals, the newest rule.
    return max(applicable, key=lambda o: (depth[o.region_code], o.id))


def _pick_cadre(
    unit: UnitRef,
    item: RouteItem,
    cadres: Sequence[Cadre],
    designated: Mapping[tuple[int, str], int],
    trace: list[str],
) -> int | None:
    in_unit = [c for c in cadres if c.unit_id == unit.id and c.active]
    wanted = designated.get((unit.id, item.code))
    if wanted is not None:
        match = next((c for c in in_unit if c.staff_id == wanted), None)
        if match is not None:
            trace.append(f"事项责任人：{match.name}（{unit.name}指定）")
            return match.staff_id
        trace.append("指定责任人已停用，改按在办件数最少分配")
    if not in_unit:
        trace.append(f"{unit.name} 暂无在岗纪检干部，待单位负责人分配")
        return None
    best = min(in_unit, key=lambda c: (c.open_cases, c.staff_id))
    trace.append(f"承办干部：{best.name}（在办 {best.open_cases} 件，为本单位最少）")
    return best.staff_id


def route(
    *,
    item: RouteItem,
    region: RegionChain,
    units: UnitDirectory,
    calendar: WorkCalendar,
    received_at: datetime,
    overrides: Sequence[Override] = (),
    cadres: Sequence[Cadre] = (),
    designated: Mapping[tuple[int, str], int] | None = None,
    accusation: bool | None = None,
    accused_level: RegionLevel | None = None,
    acceptance_days: int = 1,
) -> RouteDecision:
    trace: list[str] = [
        f"事项 {item.code}「{item.name}」：{item.klass.label}，{_CHINESE_LEVEL[item.scope]}事项，"
        f"主管部门 {item.department_name}，{item.tier.label}",
        f"反映区域：{region.label}",
    ]
    is_accusation = item.klass is ItemClass.accusation if accusation is None else accusation
    if is_accusation and accused_level is None:
        accused_level = item.scope
    required_level: RegionLevel | None = None
    report_up = False
    if is_accusation:
        assert accused_level is not None
        required_level = accused_level.parent()
        if required_level is None:
            # No level above the city on this platform: the city commission
            # registers it (one door, nothing refused) and reports it up.
            required_level, report_up = RegionLevel.city, True

    unit: UnitRef | None = None
    override = _override_for(item, region, overrides)
    if override is not None:
        candidate = units.get(override.unit_id)
        if candidate is None or not candidate.active:
            trace.append(f"管理员调整规则 #{override.id} 指向的单位已不存在或停用，忽略")
        elif (
            is_accusation
            and accused_level is not None
            and candidate.level.rank >= accused_level.rank
            and not report_up
        ):
            trace.append(
                f"管理员调整规则 #{override.id} 指向 {candidate.name}，"
                "与“举报由上一级监督”冲突，忽略"
            )
        else:
            unit = candidate
            trace.append(
                f"管理员调整（规则 #{override.id}，{override.created_by}：{override.reason}）"
                f" → {candidate.name}"
            )

    if unit is None and is_accusation:
        assert accused_level is not None and required_level is not None
        found, label = _supervising_unit_for_level(required_level, region, units)
        if found is None:
            raise RoutingError(
                f"举报{_CHINESE_LEVEL[accused_level]}干部须由上一级监督，但 {label} 不存在"
            )
        unit = found
        if report_up:
            trace.append(
                "举报对象为市级干部 → 依规由上一级（四川省纪委监委）监督："
                f"{unit.name}登记后逐级上报，不由市级自行处置"
            )
        else:
            trace.append(
                f"举报对象为{_CHINESE_LEVEL[accused_level]}干部 → 由上一级监督，"
                f"不由同级自办：{unit.name}"
            )
    if unit is None:
        unit = _default_unit(item, region, units, trace)
    if not unit.active:
        raise RoutingError(f"{unit.name} 已停用，请管理员调整事项 {item.code} 的分流规则")

    dept_level = RegionLevel.city if item.scope is RegionLevel.city else RegionLevel.county
    dept_node = region.at(dept_level) or region.nodes[0]
    cadre_id = _pick_cadre(unit, item, cadres, designated or {}, trace)

    accept_due = calendar.deadline(received_at, acceptance_days)
    due = calendar.deadline(received_at, item.time_limit_days)
    skipped = _skipped_days(received_at, due, calendar)
    holiday_note = f"，期间 {skipped} 个法定节假日顺延" if skipped else ""
    trace.append(f"受理时限 {acceptance_days} 个工作日，至 {_fmt_day(accept_due, calendar)}")
    trace.append(
        f"办理时限 {item.time_limit_days} 个工作日（{item.tier.label}），"
        f"至 {_fmt_day(due, calendar)}{holiday_note}"
    )
    warnings = tuple(
        f"{year} 年节假日安排尚未导入，期限暂按周末计算" for year in sorted(calendar.unknown_years)
    ) + (("须报送四川省纪委监委",) if report_up else ())
    return RouteDecision(
        unit=unit,
        department_code=item.department_code,
        department_region_code=dept_node.code,
        cadre_id=cadre_id,
        tier=item.tier,
        time_limit_days=item.time_limit_days,
        accept_due_at=accept_due,
        due_at=due,
        override_id=override.id if override is not None and unit.id == override.unit_id else None,
        trace=tuple(trace),
        warnings=warnings,
        reports_up=report_up,
    )
