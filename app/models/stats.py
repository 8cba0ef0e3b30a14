from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

METRICS = (
    "received",
    "accepted",
    "closed",
    "closed_on_time",
    "handling_days_sum",
    "rated",
    "satisfied",
    "basic",
    "unsatisfied",
    "score_sum",
    "unsolved",
    "reopened",
    "fake_closures",
    "closed_untimed",
)


class _Metrics:
    received: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_on_time: Mapped[int] = mapped_column(Integer, default=0)
    handling_days_sum: Mapped[int] = mapped_column(Integer, default=0)
    rated: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    basic: Mapped[int] = mapped_column(Integer, default=0)
    unsatisfied: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[int] = mapped_column(Integer, default=0)
    unsolved: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    fake_closures: Mapped[int] = mapped_column(Integer, default=0)
    # Of the closed, those whose timeliness is not counted (historical cases,
    # closed before this system watched their deadline): out of on-time rates.
    closed_untimed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class StatsTownDay(_Metrics, Base):
    """Totals per township and day: bounded by the calendar, not by the data
    (42 townships × 365 days a year), for totals, months and regions."""

    __tablename__ = "stats_town_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    township_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), index=True)


class StatsUnitMonth(_Metrics, Base):
    """Per unit and month, for the unit breakdown and rankings."""

    __tablename__ = "stats_unit_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)


class StatsItemMonth(_Metrics, Base):
    """Per item, county and month, for the item and category breakdowns."""

    __tablename__ = "stats_item_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12), primary_key=True)


class StatsCityItemMonth(_Metrics, Base):
    """Per item and month for the whole city: the item and category breakdowns
    of the city-wide overview. At most 517 items × 12 months a year whatever
    the volume, where stats_item_month (× 7 counties) fills to 45k rows at 1M
    cases and made the city overview grow with the data (bench/README.md)."""

    __tablename__ = "stats_city_item_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(8), primary_key=True)


class StatsDaily(_Metrics, Base):
    """Counts per day × unit × item × township, kept in step with the events.

    The finest grain: single-unit and township views, cluster alerts, and the
    source the coarse tables are derived from.
    """

    __tablename__ = "stats_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    township_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))

    __table_args__ = (
        Index("ix_stats_daily_township_day", "township_code", "day"),
        Index("ix_stats_daily_unit_day", "unit_id", "day"),
        # The class-case alert sums received over a window of days by item and
        # township; on PostgreSQL it reads this index alone (index-only scan).
        Index(
            "ix_stats_daily_cluster",
            "day",
            "item_code",
            "township_code",
            postgresql_include=["received", "unit_id"],
        ),
    )


class StatsOpenDue(Base):
    """Open cases counted by local due day, unit, item and township.

    "Open and overdue now" is the sum over due days before today, so the
    overview never scans the cases. Rows for days long past are folded into
    one row per key dated ``SETTLED_DAY`` (``rollup.compact_open_due``), which
    keeps the rows read bounded by the reference data rather than the cases.
    A closure after folding may leave a negative row for its old day; sums stay
    exact and the next fold absorbs it.
    """

    __tablename__ = "stats_open_due"

    due_day: Mapped[date] = mapped_column(Date, primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    township_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    open: Mapped[int] = mapped_column(Integer, default=0)


class _SameDay:
    """两个当天 counters: of the real-name online cases accepted (closed) on a
    local day, how many heard it from the system that same day."""

    accepted: Mapped[int] = mapped_column(Integer, default=0)
    accepted_told: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_told: Mapped[int] = mapped_column(Integer, default=0)


class StatsSameDayTown(_SameDay, Base):
    """Per township and local day, for region-wide overviews: bounded by the
    calendar (42 townships × 365 days a year), not by the cases."""

    __tablename__ = "stats_same_day_town"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    township_code: Mapped[str] = mapped_column(String(12), primary_key=True)


class StatsSameDay(_SameDay, Base):
    """Per township, unit and local day, for one unit's overview (read by unit)."""

    __tablename__ = "stats_same_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    township_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)

    __table_args__ = (Index("ix_stats_same_day_unit_day", "unit_id", "day"),)


class StatsSameDayMark(Base):
    """Where each counted case stands in the same-day tables now.

    The figure depends on the case (acceptance and closure moments, unit,
    township) and on its outbox (when the notices were delivered), which
    change at different times in different processes; each change recounts
    the case from its present state and moves it from this mark to the new
    one, so applying a change twice moves nothing. Only cases that count
    have a row."""

    __tablename__ = "stats_same_day_marks"

    complaint_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    township_code: Mapped[str] = mapped_column(String(12))
    unit_id: Mapped[int] = mapped_column(Integer)
    accepted_day: Mapped[date | None] = mapped_column(Date)
    accepted_told: Mapped[bool] = mapped_column(default=False)
    closed_day: Mapped[date | None] = mapped_column(Date)
    closed_told: Mapped[bool] = mapped_column(default=False)


class StatsRecentCluster(Base):
    """Cases received over the 30 local days ending ``StatsRecentWindow.last_day``,
    per item, township and unit: the class-case alert's counts, kept as a
    running total so the alert reads the largest groups off an index instead
    of summing a month of ``stats_daily`` (45k rows at 1M cases, the part of
    the rankings that grew with the data; bench/README.md).

    ``unit_id`` 0 (``app.stats.recent.ALL_UNITS``) holds the total over every
    unit, which the region-wide alert reads; the other rows serve a unit's own
    view. The projector adds each batch's receipt changes inside the window
    and, when the local day turns, recounts the whole window from
    ``stats_daily`` (``app/stats/recent.py``), so the rows always equal that
    sum for the window's end day."""

    __tablename__ = "stats_recent_cluster"

    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    township_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    received: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        # The alert's order: largest first, ties by item then township.
        Index(
            "ix_stats_recent_cluster_top",
            "unit_id",
            received.desc(),
            "item_code",
            "township_code",
        ),
    )


class StatsRecentWindow(Base):
    """The window ``stats_recent_cluster`` counts: its last local day and length.
    No row: not counted yet (readers sum ``stats_daily`` instead)."""

    __tablename__ = "stats_recent_window"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_day: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
