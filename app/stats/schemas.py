from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class Figures(BaseModel):
    received: int = 0
    accepted: int = 0
    closed: int = 0
    closed_on_time: int = 0
    open_overdue: int = 0
    rated: int = 0
    satisfied: int = 0
    basic: int = 0
    unsatisfied: int = 0
    reopened: int = 0
    fake_closures: int = 0
    unsolved: int = 0
    closure_rate: float | None = Field(default=None, description="办结率 = closed / received")
    solved_rate: float | None = Field(
        default=None, description="解决率 = (closed - unsolved) / closed"
    )
    satisfaction_rate: float | None = Field(
        default=None, description="满意率 = (satisfied + basic) / rated"
    )
    mean_score: float | None = None
    on_time_rate: float | None = Field(
        default=None, description="按期办结率 = on-time closed / (closed + open overdue)"
    )
    reopen_rate: float | None = Field(default=None, description="重办率 = reopened / closed")
    avg_handling_days: float | None = Field(
        default=None, description="working days from receipt to closure"
    )


class Breakdown(BaseModel):
    key: str
    label: str
    figures: Figures


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


class PublicStats(BaseModel):
    region_code: str
    region_name: str
    received: int
    closed: int
    closure_rate: float | None
    solved_rate: float | None
    satisfaction_rate: float | None


class RankedUnit(BaseModel):
    unit_id: int
    unit_name: str
    score: float
    figures: Figures
    reasons: list[str] = Field(default_factory=list)


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
    min_cases: int
    red_list: list[RankedUnit]
    black_list: list[RankedUnit]
    alerts: list[Alert]
