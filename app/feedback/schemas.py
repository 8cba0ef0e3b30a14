from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from app.core.schemas import RequestModel

Satisfaction = Literal["satisfied", "basic", "unsatisfied"]


class RatingCreate(RequestModel):
    score: int = Field(ge=1, le=5)
    satisfaction: Satisfaction
    comment: str | None = Field(default=None, max_length=500)


class RatingRead(BaseModel):
    complaint_id: str
    round: int
    score: int
    satisfaction: Satisfaction
    comment: str
    reopened: bool
    status: str
    created_at: datetime


class DrawUnit(BaseModel):
    unit_id: int
    population: int
    drawn: int


class DrawRead(BaseModel):
    draw_id: int
    quarter: str
    seed: str
    fraction: float
    population: int
    drawn: int
    by_unit: list[DrawUnit]
    callback_ids: list[int]


class CallbackRecord(RequestModel):
    method: Literal["phone", "on_site"]
    reached: bool
    resolved: bool | None = None
    satisfaction: Satisfaction | None = None
    fake_closure: bool = False
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> CallbackRecord:
        if not self.reached and (
            self.resolved is not None or self.satisfaction or self.fake_closure
        ):
            raise ValueError("未联系上群众时，不能填写是否解决、满意度或虚假办结")
        if self.fake_closure and not self.note.strip():
            raise ValueError("认定虚假办结须写明核实情况")
        return self


class CallbackRead(BaseModel):
    id: int
    draw_id: int
    complaint_id: str
    unit_id: int
    status: str
    method: str | None
    reached: bool | None
    resolved: bool | None
    satisfaction: str | None
    fake_closure: bool
    note: str
    done_at: datetime | None


class CallbackPage(BaseModel):
    items: list[CallbackRead]
    next_cursor: str | None = None
