"""The routing engine as a table of cases, with no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest

from app.models.enums import ItemClass, RegionLevel, Tier, UnitKind
from app.routing.calendar import WorkCalendar
from app.routing.engine import (
    Cadre,
    Override,
    RegionChain,
    RegionNode,
    RouteItem,
    RoutingError,
    UnitDirectory,
    UnitRef,
    route,
)

CST = ZoneInfo("Asia/Shanghai")

CITY = RegionNode("511700000000", "达州市", RegionLevel.city)
COUNTY = RegionNode("511702000000", "通川区", RegionLevel.county)
TOWN = RegionNode("511702005000", "凤北街道", RegionLevel.township)
VILLAGE = RegionNode("511702005001", "双鱼湖社区", RegionLevel.village)
CHAIN = RegionChain((CITY, COUNTY, TOWN, VILLAGE))

U_CITY = UnitRef(1, "JW-5117", "达州市纪委监委", UnitKind.commission, RegionLevel.city, CITY.code)
U_CITY_G05 = UnitRef(
    2,
    "JW-5117-G05",
    "达州市纪委监委派驻第五纪检监察组",
    UnitKind.resident_group,
    RegionLevel.city,
    CITY.code,
    "G05",
)
U_COUNTY = UnitRef(
    3, "JW-511702", "通川区纪委监委", UnitKind.commission, RegionLevel.county, COUNTY.code
)
U_COUNTY_G05 = UnitRef(
    4,
    "JW-511702-G05",
    "通川区纪委监委派驻第五纪检监察组",
    UnitKind.resident_group,
    RegionLevel.county,
    COUNTY.code,
    "G05",
)
U_TOWN = UnitRef(
    5,
    "XZ-511702005",
    "凤北街道纪工委",
    UnitKind.township_committee,
    RegionLevel.township,
    TOWN.code,
)
U_VILLAGE = UnitRef(
    6,
    "CW-511702005001",
    "双鱼湖社区居务监督委员会",
    UnitKind.village_committee,
    RegionLevel.village,
    VILLAGE.code,
)
ALL_UNITS = [U_CITY, U_CITY_G05, U_COUNTY, U_COUNTY_G05, U_TOWN, U_VILLAGE]


def item(
    scope: RegionLevel = RegionLevel.village,
    klass: ItemClass = ItemClass.complaint,
    tier: Tier = Tier.simple,
    days: int = 3,
    code: str = "0103",
) -> RouteItem:
    return RouteItem(
        code=code,
        name="村级财务收支不公开",
        klass=klass,
        scope=scope,
        department_code="D037",
        department_name="农业农村局",
        group_code="G05",
        tier=tier,
        time_limit_days=days,
    )


def at(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=CST)


def go(it: RouteItem, **kw: object) -> object:
    args: dict[str, object] = {
        "item": it,
        "region": CHAIN,
        "units": UnitDirectory(ALL_UNITS),
        "calendar": WorkCalendar(),
        "received_at": at(2026, 11, 24),
    }
    args.update(kw)
    return route(**args)  # type: ignore[arg-type]


class TestScopes:
    @pytest.mark.parametrize(
        ("scope", "unit"),
        [
            (RegionLevel.village, U_TOWN),
            (RegionLevel.township, U_TOWN),
            (RegionLevel.county, U_COUNTY_G05),
            (RegionLevel.city, U_CITY_G05),
        ],
    )
    def test_each_scope_goes_to_its_unit(self, scope: RegionLevel, unit: UnitRef) -> None:
        d = go(item(scope=scope))
        assert d.unit == unit  # type: ignore[attr-defined]
        assert any(unit.name in line for line in d.trace)  # type: ignore[attr-defined]

    def test_department_is_the_owning_department_at_county_or_city(self) -> None:
        assert go(item(scope=RegionLevel.village)).department_region_code == COUNTY.code  # type: ignore[attr-defined]
        assert go(item(scope=RegionLevel.city)).department_region_code == CITY.code  # type: ignore[attr-defined]

    def test_village_item_filed_at_county_level_is_refused_clearly(self) -> None:
        with pytest.raises(RoutingError, match="须选择到乡镇"):
            go(item(), region=RegionChain((CITY, COUNTY)))

    def test_trace_reads_as_reasons(self) -> None:
        d = go(item())
        assert d.trace[0].startswith("事项 0103「村级财务收支不公开」")  # type: ignore[attr-defined]
        assert "反映区域：达州市通川区凤北街道双鱼湖社区" in d.trace  # type: ignore[attr-defined]


class TestAccusationRule:
    @pytest.mark.parametrize(
        ("accused", "unit"),
        [
            (RegionLevel.village, U_TOWN),
            (RegionLevel.township, U_COUNTY),
            (RegionLevel.county, U_CITY),
        ],
    )
    def test_accusation_is_supervised_one_level_up(
        self, accused: RegionLevel, unit: UnitRef
    ) -> None:
        d = go(
            item(klass=ItemClass.accusation, tier=Tier.discipline, days=30), accused_level=accused
        )
        assert d.unit == unit  # type: ignore[attr-defined]
        assert d.unit.level.rank == accused.rank - 1  # type: ignore[attr-defined]
        assert any("由上一级监督" in line for line in d.trace)  # type: ignore[attr-defined]

    def test_accused_level_defaults_to_the_items_scope(self) -> None:
        d = go(
            item(
                scope=RegionLevel.township,
                klass=ItemClass.accusation,
                tier=Tier.discipline,
                days=30,
            )
        )
        assert d.unit == U_COUNTY  # type: ignore[attr-defined]

    def test_a_township_official_is_never_supervised_by_the_township(self) -> None:
        d = go(item(scope=RegionLevel.village), accusation=True, accused_level=RegionLevel.township)
        assert d.unit.kind is UnitKind.commission and d.unit != U_TOWN  # type: ignore[attr-defined]

    def test_city_official_is_registered_by_the_city_commission_and_reported_up(self) -> None:
        d = go(item(klass=ItemClass.accusation), accused_level=RegionLevel.city)
        assert d.unit == U_CITY and d.reports_up  # type: ignore[attr-defined]
        assert any("逐级上报" in t for t in d.trace)  # type: ignore[attr-defined]
        plain = go(item(klass=ItemClass.accusation), accused_level=RegionLevel.township)
        assert not plain.reports_up  # type: ignore[attr-defined]

    def test_override_that_breaks_the_rule_is_ignored(self) -> None:
        o = Override(9, "0103", TOWN.code, U_TOWN.id, "试点", "admin")
        d = go(
            item(klass=ItemClass.accusation, tier=Tier.discipline, days=30),
            accused_level=RegionLevel.township,
            overrides=[o],
        )
        assert d.unit == U_COUNTY and d.override_id is None  # type: ignore[attr-defined]
        assert any("冲突，忽略" in line for line in d.trace)  # type: ignore[attr-defined]


class TestOverrides:
    def test_most_specific_override_wins(self) -> None:
        county_rule = Override(1, "0103", COUNTY.code, U_COUNTY.id, "区级统管", "admin")
        village_rule = Override(2, "0103", VILLAGE.code, U_COUNTY_G05.id, "专项整治", "li")
        d = go(item(), overrides=[village_rule, county_rule])
        assert d.unit == U_COUNTY_G05 and d.override_id == 2  # type: ignore[attr-defined]
        assert any("规则 #2" in line and "专项整治" in line for line in d.trace)  # type: ignore[attr-defined]

    def test_override_for_another_item_or_region_does_not_apply(self) -> None:
        other_item = Override(1, "0999", COUNTY.code, U_COUNTY.id, "x", "admin")
        other_region = Override(2, "0103", "511703000000", U_COUNTY.id, "x", "admin")
        d = go(item(), overrides=[other_item, other_region])
        assert d.unit == U_TOWN and d.override_id is None  # type: ignore[attr-defined]

    def test_override_to_an_inactive_unit_is_ignored_with_a_note(self) -> None:
        from dataclasses import replace

        closed = replace(U_COUNTY, active=False)
        units = UnitDirectory([closed, U_TOWN, U_CITY])
        d = go(
            item(), units=units, overrides=[Override(1, "0103", COUNTY.code, closed.id, "x", "a")]
        )
        assert d.unit == U_TOWN  # type: ignore[attr-defined]
        assert any("停用" in line for line in d.trace)  # type: ignore[attr-defined]


class TestMissingUnits:
    def test_missing_township_committee_is_a_clear_error(self) -> None:
        with pytest.raises(RoutingError, match="凤北街道 未设置"):
            go(item(), units=UnitDirectory([U_CITY, U_COUNTY]))

    def test_missing_resident_group_names_the_group(self) -> None:
        with pytest.raises(RoutingError, match="G05"):
            go(item(scope=RegionLevel.county), units=UnitDirectory([U_CITY, U_COUNTY, U_TOWN]))

    def test_missing_commission_for_an_accusation(self) -> None:
        with pytest.raises(RoutingError, match="通川区纪委监委 不存在"):
            go(
                item(klass=ItemClass.accusation),
                accused_level=RegionLevel.township,
                units=UnitDirectory([U_CITY, U_TOWN]),
            )


class TestCadres:
    cadres: ClassVar[list[Cadre]] = [
        Cadre(10, U_TOWN.id, "张欣", open_cases=5),
        Cadre(11, U_TOWN.id, "李敏", open_cases=2),
        Cadre(12, U_TOWN.id, "王五", open_cases=0, active=False),
        Cadre(13, U_COUNTY.id, "陈静", open_cases=0),
    ]

    def test_designated_cadre_first(self) -> None:
        d = go(item(), cadres=self.cadres, designated={(U_TOWN.id, "0103"): 10})
        assert d.cadre_id == 10  # type: ignore[attr-defined]

    def test_least_loaded_active_cadre_of_that_unit_otherwise(self) -> None:
        assert go(item(), cadres=self.cadres).cadre_id == 11  # type: ignore[attr-defined]

    def test_inactive_designated_cadre_falls_back(self) -> None:
        d = go(item(), cadres=self.cadres, designated={(U_TOWN.id, "0103"): 12})
        assert d.cadre_id == 11  # type: ignore[attr-defined]

    def test_no_cadre_leaves_it_for_the_unit(self) -> None:
        d = go(item(), cadres=[])
        assert d.cadre_id is None and any("待单位负责人分配" in t for t in d.trace)  # type: ignore[attr-defined]


class TestDeadlines:
    def test_general_case_spanning_national_day_2026(self) -> None:
        # Received Mon 28 Sep; 1–7 Oct off; Sat 10 Oct is a make-up working day.
        d = go(item(tier=Tier.general, days=7), received_at=at(2026, 9, 28))
        assert d.due_at == datetime(2026, 10, 13, 23, 59, 59, tzinfo=CST)  # type: ignore[attr-defined]
        assert d.accept_due_at == datetime(2026, 9, 29, 23, 59, 59, tzinfo=CST)  # type: ignore[attr-defined]
        assert any("法定节假日顺延" in t for t in d.trace)  # type: ignore[attr-defined]
        assert d.warnings == ()  # type: ignore[attr-defined]

    def test_simple_case_spanning_spring_festival_2026(self) -> None:
        # Thu 12 Feb; Sat 14 Feb is a make-up working day; 15–23 Feb off.
        d = go(item(days=3), received_at=at(2026, 2, 12))
        assert d.due_at.date() == date(2026, 2, 24)  # type: ignore[attr-defined]

    def test_friday_evening_filing_counts_from_the_local_day(self) -> None:
        # 2026-11-27 23:30 in Dazhou is still Friday there (15:30 UTC).
        d = go(item(days=1), received_at=datetime(2026, 11, 27, 15, 30, tzinfo=UTC))
        assert d.due_at.date() == date(2026, 11, 30)  # type: ignore[attr-defined]

    def test_unknown_year_counts_weekends_and_warns(self) -> None:
        d = go(item(tier=Tier.complex, days=30), received_at=at(2026, 12, 20))
        assert any("2027" in w for w in d.warnings)  # type: ignore[attr-defined]

    def test_admin_calendar_overrides_the_library(self) -> None:
        # An administrator marks Wed 25 Nov 2026 as a day off (e.g. a local emergency).
        cal = WorkCalendar({date(2026, 11, 25): False})
        d = go(item(days=1), calendar=cal)
        assert d.due_at.date() == date(2026, 11, 26)  # type: ignore[attr-defined]
        assert cal.source_of(date(2026, 11, 25)) == "admin"

    def test_imported_next_year_silences_the_warning(self) -> None:
        cal = WorkCalendar({date(2027, 1, 1): False}, admin_years=frozenset({2027}))
        d = go(item(tier=Tier.complex, days=30), received_at=at(2026, 12, 20), calendar=cal)
        assert d.warnings == ()  # type: ignore[attr-defined]
        assert d.due_at.date() == date(2027, 2, 1)  # type: ignore[attr-defined]


class TestCalendar:
    def test_add_workdays_rejects_zero(self) -> None:
        with pytest.raises(ValueError):
            WorkCalendar().add_workdays(date(2026, 1, 5), 0)

    def test_workdays_between(self) -> None:
        cal = WorkCalendar()
        assert cal.workdays_between(at(2026, 9, 28), at(2026, 10, 13)) == 7
        assert cal.workdays_between(at(2026, 10, 13), at(2026, 9, 28)) == 0

    def test_chain_must_start_at_the_city(self) -> None:
        with pytest.raises(ValueError):
            RegionChain((COUNTY, TOWN))


def test_working_day_answers_are_kept_and_equal_to_fresh_ones() -> None:
    """add_workdays keeps its answers per calendar: asked again (a filing
    asks the same two or three questions all day) it answers the same as a
    calendar asked for the first time, across the 2026 National Day week."""
    overrides = {date(2026, 10, 10): True}  # an adjusted working Saturday
    kept = WorkCalendar(overrides)
    for round_ in range(2):
        for offset in range(0, 60):
            start = date(2026, 9, 1) + timedelta(days=offset)
            for n in (1, 3, 5, 15, 30):
                fresh = WorkCalendar(overrides).add_workdays(start, n)
                assert kept.add_workdays(start, n) == fresh, (round_, start, n)
    assert kept.add_workdays(date(2026, 10, 9), 1) == date(2026, 10, 10)
    with pytest.raises(ValueError):
        kept.add_workdays(date(2026, 10, 9), 0)
