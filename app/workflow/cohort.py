"""The cases behind a statistics figure, as a queue filter.

A figure of ``/staff/stats/overview`` counts each case once, in the period of
the local day it was received, by its present state (``app/stats/rollup.py``).
``Cohort`` states the same selection in SQL over the complaints themselves, so
the dashboard can link every figure to the queue (and the ledger) holding
exactly the cases it counts. Each metric's condition is the SQL twin of the
fold's rule for that counter (``rollup.step`` and ``rollup.contribution``):

* accepted: an accepting event (accepted, resolved, closed or reopened);
* closed: closed now; on time: closed by its deadline (the 'closed' event's
  ``on_time`` is ``now <= due_at`` at the closing moment, ``closed_at``);
* rated / satisfied / basic / unsatisfied: the latest round's verdict;
* reopened: reopened at least once;
* fake_closures: a callback found it faked;
* unsolved: closed, and rated unsatisfied in this round, or a callback since
  this closure found it unresolved;
* open_overdue: open and due before today (a state, so the period does not
  apply, exactly as in the overview).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import aliased

from app.models import Callback, Complaint, ComplaintEvent, Rating
from app.models.enums import ComplaintStatus
from app.stats import rollup

METRIC_LABELS = {
    "received": "收到",
    "accepted": "已受理",
    "closed": "已办结",
    "closed_on_time": "按期办结",
    "open_overdue": "在办超期",
    "rated": "已评价",
    "satisfied": "满意",
    "basic": "基本满意",
    "unsatisfied": "不满意",
    "reopened": "重办",
    "fake_closures": "虚假办结",
    "unsolved": "未解决",
}
ACCEPTING = ("accepted", "resolved", "closed", "reopened")
_DONE = (ComplaintStatus.closed, ComplaintStatus.rejected)


@dataclass(frozen=True, slots=True)
class Cohort:
    """Received in [date_from, date_to] (local days, either open-ended) and
    counted by ``metric`` (None or "received": every case received)."""

    date_from: date | None = None
    date_to: date | None = None
    metric: str | None = None

    def __post_init__(self) -> None:
        if self.metric is not None and self.metric not in METRIC_LABELS:
            raise ValueError(f"unknown metric {self.metric}")


def day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, rollup.TZ)


def _latest_verdict() -> ColumnElement[str | None]:
    latest = aliased(Rating)
    return (
        select(latest.satisfaction)
        .where(latest.complaint_id == Complaint.id)
        .order_by(latest.round.desc())
        .limit(1)
        .correlate(Complaint)
        .scalar_subquery()
    )


def _has_event(*kinds: str) -> ColumnElement[bool]:
    return (
        select(ComplaintEvent.id)
        .where(ComplaintEvent.complaint_id == Complaint.id, ComplaintEvent.kind.in_(kinds))
        .correlate(Complaint)
        .exists()
    )


def _unsolved() -> ColumnElement[bool]:
    unsatisfied_now = (
        select(Rating.id)
        .where(
            Rating.complaint_id == Complaint.id,
            Rating.round == Complaint.reopen_count,
            Rating.satisfaction == "unsatisfied",
        )
        .correlate(Complaint)
        .exists()
    )
    callback_since = (
        select(Callback.id)
        .where(
            Callback.complaint_id == Complaint.id,
            Callback.status == "done",
            Callback.done_at >= Complaint.closed_at,
            or_(Callback.resolved.is_(False), Callback.fake_closure.is_(True)),
        )
        .correlate(Complaint)
        .exists()
    )
    return and_(Complaint.status == ComplaintStatus.closed, or_(unsatisfied_now, callback_since))


def metric_condition(metric: str, now: datetime) -> ColumnElement[bool]:
    closed = Complaint.status == ComplaintStatus.closed
    if metric == "accepted":
        return _has_event(*ACCEPTING)
    if metric == "closed":
        return closed
    if metric == "closed_on_time":
        return and_(closed, Complaint.closed_at <= Complaint.due_at)
    if metric == "open_overdue":
        today = day_start(rollup.local_date(now))
        return and_(Complaint.status.not_in(_DONE), Complaint.due_at < today)
    if metric == "rated":
        return _latest_verdict().in_(("satisfied", "basic", "unsatisfied"))
    if metric in ("satisfied", "basic", "unsatisfied"):
        return _latest_verdict() == metric
    if metric == "reopened":
        return Complaint.reopen_count > 0
    if metric == "fake_closures":
        return (
            select(Callback.id)
            .where(Callback.complaint_id == Complaint.id, Callback.fake_closure.is_(True))
            .correlate(Complaint)
            .exists()
        )
    if metric == "unsolved":
        return _unsolved()
    return true()


def condition(cohort: Cohort, now: datetime) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = []
    if cohort.metric != "open_overdue":  # a state now, whatever the receipt day
        if cohort.date_from is not None:
            conds.append(Complaint.received_at >= day_start(cohort.date_from))
        if cohort.date_to is not None:
            conds.append(Complaint.received_at < day_start(cohort.date_to + timedelta(days=1)))
    if cohort.metric:
        conds.append(metric_condition(cohort.metric, now))
    return and_(true(), *conds)
