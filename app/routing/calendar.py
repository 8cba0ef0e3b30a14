"""Chinese working days, as a pure object.

Precedence for a day: the administrators' table (the State Council's published
schedule, imported), then the ``chinese-calendar`` library, then plain
weekends. A year that neither of the first two knows is counted by weekends
alone and reported in ``unknown_years`` so callers can warn.

Deadlines: "N working days" counts from the day after receipt, and the case
is due at the end (23:59:59 local) of the Nth working day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

LibraryLookup = Callable[[date], bool | None]


def library_lookup(day: date) -> bool | None:
    """The library's verdict, or None when it has no data for that year."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def library_years() -> frozenset[int]:
    years = {d.year for d in chinese_calendar.holidays} | {
        d.year for d in chinese_calendar.workdays
    }
    return frozenset(years)


class WorkCalendar:
    MAX_SPAN_DAYS = 400  # 90 working days never need more than this
    MAX_ANSWERS = 10_000  # add_workdays answers kept: a few per day in use

    def __init__(
        self,
        overrides: Mapping[date, bool] | None = None,
        *,
        timezone: str = "Asia/Shanghai",
        library: LibraryLookup = library_lookup,
        admin_years: frozenset[int] | None = None,
    ) -> None:
        self._overrides = dict(overrides or {})
        self._library = library
        self.tz = ZoneInfo(timezone)
        self._admin_years = (
            admin_years if admin_years is not None else frozenset(d.year for d in self._overrides)
        )
        self.unknown_years: set[int] = set()
        self._memo: dict[date, bool] = {}
        self._added: dict[tuple[date, int], date] = {}

    def source_of(self, day: date) -> str:
        if day in self._overrides:
            return "admin"
        if self._library(day) is not None:
            return "library"
        return "weekend-only"

    def is_workday(self, day: date) -> bool:
        cached = self._memo.get(day)
        if cached is not None:
            return cached
        verdict = self._resolve(day)
        self._memo[day] = verdict
        return verdict

    def _resolve(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        verdict = self._library(day)
        if verdict is not None:
            return verdict
        if day.year not in self._admin_years:
            self.unknown_years.add(day.year)
        return day.weekday() < 5

    def add_workdays(self, start: date, n: int) -> date:
        """The Nth working day strictly after ``start`` (n >= 1)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        # Every filing of a day asks the same few questions (the acceptance
        # and handling limits): answered once per calendar, which is rebuilt
        # when the reference data moves (app/routing/refcache.py).
        found = self._added.get((start, n))
        if found is not None:
            return found
        day = start
        counted = 0
        for _ in range(self.MAX_SPAN_DAYS):
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
                if counted == n:
                    if len(self._added) < self.MAX_ANSWERS:
                        self._added[(start, n)] = day
                    return day
        raise ValueError(f"no {n} working days within {self.MAX_SPAN_DAYS} days of {start}")

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def end_of_day(self, day: date) -> datetime:
        return datetime.combine(day, time(23, 59, 59), tzinfo=self.tz)

    def deadline(self, received_at: datetime, n: int) -> datetime:
        return self.end_of_day(self.add_workdays(self.local_date(received_at), n))

    def workdays_between(self, start: datetime, end: datetime) -> int:
        """Working days after start's local day up to and including end's."""
        a, b = self.local_date(start), self.local_date(end)
        if b <= a:
            return 0
        return sum(1 for i in range(1, (b - a).days + 1) if self.is_workday(a + timedelta(days=i)))
