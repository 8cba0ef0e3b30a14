from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

COHORT = (
    "Each case counts once, in the period and breakdown of the day it was received "
    "(local time), for the unit responsible for it now, by its present state; so every "
    "rate lies between 0 and 1 for any period. "
)


class Figures(BaseModel):
    """Counts of cases (not of events), each case once: see ``COHORT``."""

    received: int = Field(default=0, description="cases received in the period")
    accepted: int = Field(
        default=0, description="of those, accepted for handling (once, even if escalated)"
    )
    closed: int = Field(
        default=0,
        description="of those, closed (signed off) now; a case reopened after closing "
        "counts again only when it closes again",
    )
    closed_on_time: int = Field(default=0, description="of the closed, closed by their deadline")
    closed_untimed: int = Field(
        default=0,
        description="of the closed, historical cases (历史件补录): their deadline was not "
        "watched here, so on-time rate and handling days leave them out",
    )
    open_overdue: int = Field(
        default=0,
        description="cases open and past their deadline now, whatever their receipt day "
        "(a state, not a flow: not limited to the period)",
    )
    rated: int = Field(default=0, description="of the received, rated by the resident (latest)")
    satisfied: int = Field(default=0, description="of the rated, latest verdict 满意")
    basic: int = Field(default=0, description="of the rated, latest verdict 基本满意")
    unsatisfied: int = Field(default=0, description="of the rated, latest verdict 不满意")
    reopened: int = Field(default=0, description="of the accepted, reopened at least once")
    fake_closures: int = Field(
        default=0, description="of the received, found faked (虚假办结) at a callback"
    )
    unsolved: int = Field(
        default=0,
        description="of the closed, unsolved: rated unsatisfied in the last handling round, "
        "or found unresolved or faked at a callback since it closed",
    )
    closure_rate: float | None = Field(
        default=None, description="办结率 = closed / received. " + COHORT
    )
    solved_rate: float | None = Field(
        default=None, description="解决率 = (closed - unsolved) / closed. " + COHORT
    )
    satisfaction_rate: float | None = Field(
        default=None,
        description="满意率 = (satisfied + basic) / rated, each case by its latest rating. "
        + COHORT,
    )
    mean_score: float | None = Field(
        default=None, description="mean of the latest scores (1-5) of the rated cases"
    )
    on_time_rate: float | None = Field(
        default=None,
        description="按期办结率 = closed_on_time / (closed - closed_untimed + open_overdue): "
        "historical cases are left out; a case open and "
        "overdue now counts as late; a case is either closed or open, never both. " + COHORT,
    )
    reopen_rate: float | None = Field(
        default=None,
        description="重办率 = reopened / accepted: the share of cases taken up that had to be "
        "handled again (unsatisfied rating, fake closure found at callback, or reopened by "
        "staff), each case once however often it was reopened. " + COHORT,
    )
    avg_handling_days: float | None = Field(
        default=None, description="working days from receipt to closure, over the closed cases"
    )


class Breakdown(BaseModel):
    key: str
    label: str
    figures: Figures


class SameDayFeedback(BaseModel):
    """两个当天: real-name online cases told the same day they were accepted and closed."""

    accepted: int = Field(description="real-name online cases accepted in the period")
    accepted_same_day: int = Field(
        description="of them, whose acceptance notice reached the resident that same day"
    )
    closed: int = Field(description="real-name online cases closed in the period")
    closed_same_day: int = Field(
        description="of them, whose closure notice reached the resident that same day"
    )
    rate: float | None = Field(
        description="(accepted_same_day + closed_same_day) / (accepted + closed); "
        "null when there is nothing to measure"
    )


class Overview(BaseModel):
    region_code: str | None
    date_from: date | None
    date_to: date | None
    totals: Figures
    by_month: list[Breakdown]
    by_category: list[Breakdown]
    by_item: list[Breakdown]
    by_unit: list[Breakdown]
    by_region: list[Breakdown]
    same_day_feedback: SameDayFeedback | None = Field(
        default=None,
        description="两个当天: the share of real-name cases whose acceptance and closure "
        "notices were delivered the same day (by acceptance / closure day in the period)",
    )
    as_of: datetime | None = Field(
        default=None,
        description="every event up to this moment is counted; the statistics projector "
        "applies new events within about a second (app/stats/projector.py)",
    )


class PublicStats(BaseModel):
    region_code: str
    region_name: str
    received: int
    closed: int
    closure_rate: float | None
    solved_rate: float | None
    satisfaction_rate: float | None
    as_of: datetime | None = Field(
        default=None,
        description="every event up to this moment is counted; the statistics projector "
        "applies new events within about a second (app/stats/projector.py)",
    )


class RankedUnit(BaseModel):
    unit_id: int
    unit_name: str
    rank: int | None = Field(
        default=None,
        description="position by composite score among the units with enough cases; "
        "null when the unit is not ranked (too few cases)",
    )
    score: float | None = Field(
        default=None,
        description="composite: 30% closure rate, 30% on-time rate, 30% satisfaction rate "
        "(0.8 when nobody rated), 10% (1 - reopen rate); null when not ranked",
    )
    figures: Figures
    listed: Literal["red", "black", "none"] = Field(
        default="none", description="which list the unit is on"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="the black-list criteria the unit meets (satisfaction or on-time rate "
        "below the floor, fake closures, reopen rate above 10%); none for a red-list unit",
    )
    reasons: list[str] = Field(
        default_factory=list,
        description="why the unit is, or is not, on the red and the black list, in Chinese",
    )


class Alert(BaseModel):
    kind: str
    title: str
    unit_id: int | None = None
    item_code: str | None = None
    township_code: str | None = None
    complaint_ids: list[str]


class Rankings(BaseModel):
    date_from: date
    date_to: date
    min_cases: int = Field(description="cases a unit must have received in the period to rank")
    rules: list[str] = Field(description="how the lists are drawn, in Chinese")
    red_list: list[RankedUnit] = Field(
        description="红榜: the best units by score that have no warning and closed at least "
        "one case, at most five"
    )
    black_list: list[RankedUnit] = Field(
        description="黑榜: the units with a warning, worst score first, at most five"
    )
    units: list[RankedUnit] = Field(
        description="every unit with cases in the period, ranked ones first, each with the "
        "reasons it is or is not on a list (e.g. too few cases)"
    )
    alerts: list[Alert]
    as_of: datetime | None = Field(
        default=None,
        description="every event up to this moment is counted; the statistics projector "
        "applies new events within about a second (app/stats/projector.py)",
    )
