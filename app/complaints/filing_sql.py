"""A new case's rows in one statement (PostgreSQL): the filing's hot path.

The ORM path writes a case in about ten round trips: the complaint, its two
events, its media, the notification, the idempotency answer, then the day's
counter and the final number, each a statement while the counter row, taken
last, stays locked to the commit. Here the same rows go out as one
data-modifying CTE:

    n     the day's counter, +1 (insert-or-update), RETURNING the number
    c     the complaint, numbered from n
    e1,e2 the filed and routed events (the insert queues them for the
          statistics projector, by trigger)
    note  the resident's notice, its text numbered from c
    idem  the idempotency answer
    media the claimed uploads, attached

The counter row is locked from this statement to the commit that follows it:
one round trip, not the rest of the work. A failure anywhere rolls back the
whole statement, counter included, so numbers stay gapless.

Values come from the same ORM objects the ORM path would add (built by
``filing.build_case``), turned into literals typed by each column, so the
column lists follow the models: ``tests/complaints/test_filing_sql.py`` files
the same case both ways and compares every column of every row.
SQLite keeps the ORM path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Integer, String, cast, func, inspect, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnElement

from app.models import (
    Complaint,
    ComplaintEvent,
    IdempotencyRecord,
    Media,
    Notification,
    TrackingCounter,
)

# Where the notice's text carries the number, replaced inside the statement.
NUMBER = "⟦tracking_no⟧"


def supported(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def row_values(obj: Any) -> dict[str, Any]:
    """Column -> value for a transient ORM object, with the Python-side
    defaults the ORM would apply on flush; server-generated keys left out."""
    out: dict[str, Any] = {}
    for prop in inspect(type(obj)).column_attrs:
        column = prop.columns[0]
        value = getattr(obj, prop.key)
        if value is None and column.default is not None:
            if column.default.is_scalar:
                value = column.default.arg
            elif column.default.is_callable:
                value = column.default.arg(None)
        serial = column.primary_key and isinstance(column.type, Integer)
        if value is None and serial and column.autoincrement in (True, "auto"):
            continue  # the sequence numbers it
        out[column.name] = value
    return out


def _typed(model: Any, values: dict[str, Any]) -> dict[str, ColumnElement[Any]]:
    table = model.__table__
    return {k: literal(v, type_=table.c[k].type) for k, v in values.items()}


@dataclass
class Idempotent:
    record_id: int
    status_code: int
    response: dict[str, Any]


async def insert_case(
    session: AsyncSession,
    *,
    complaint: Complaint,
    events: Sequence[ComplaintEvent],
    day: date,
    prefix: str,
    notification: Notification | None = None,
    media: Sequence[Media] = (),
    idempotent: Idempotent | None = None,
) -> str:
    """Write every row of a new case in one statement; returns its number.

    ``complaint.tracking_no`` is replaced by the counter's next number; a
    notification's body may carry ``NUMBER`` where the number goes. The media
    rows must already hold their attached values (``media_service.attach``).
    """
    counter = (
        pg_insert(TrackingCounter)
        .values(day=day, value=1)
        .on_conflict_do_update(
            index_elements=[TrackingCounter.day], set_={"value": TrackingCounter.value + 1}
        )
        .returning(TrackingCounter.value)
        .cte("n")
    )
    number = (
        literal(f"{prefix}{day:%Y%m%d}-") + func.lpad(cast(counter.c.value, String), 6, "0")
    ).label("tracking_no")
    case_values = _typed(Complaint, row_values(complaint))
    case_values["tracking_no"] = number
    case = (
        pg_insert(Complaint)
        .from_select(list(case_values), select(*case_values.values()).select_from(counter))
        .returning(Complaint.tracking_no)
        .cte("c")
    )
    parts: list[Any] = []
    for i, event in enumerate(events):
        values = _typed(ComplaintEvent, row_values(event))
        parts.append(
            pg_insert(ComplaintEvent)
            .from_select(list(values), select(*values.values()).select_from(case))
            .cte(f"e{i + 1}")
        )
    if notification is not None:
        values = _typed(Notification, row_values(notification))
        values["body"] = func.replace(values["body"], NUMBER, case.c.tracking_no)
        parts.append(
            pg_insert(Notification)
            .from_select(list(values), select(*values.values()).select_from(case))
            .cte("note")
        )
    if idempotent is not None:
        parts.append(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == idempotent.record_id)
            .values(status_code=idempotent.status_code, response=idempotent.response)
            .cte("idem")
        )
    for m in media:
        parts.append(
            update(Media)
            .where(Media.id == m.id)
            .values(
                status=m.status,
                attached_to=m.attached_to,
                attached_at=m.attached_at,
                verified_at=m.verified_at,
                owner_citizen_id=m.owner_citizen_id,
            )
            .cte(f"m_{len(parts)}")
        )
    stmt = select(case.c.tracking_no).add_cte(*parts)
    return str((await session.execute(stmt)).scalar_one())
