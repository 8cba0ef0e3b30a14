"""A new case's rows in one statement (PostgreSQL): the filing's hot path.

The ORM path writes a case in about ten round trips: the complaint, its two
events, its media, the notification, the idempotency answer, then the day's
counter and the final number, each a statement while the counter row, taken
last, stays locked to the commit. Here the same rows go out as one
data-modifying CTE:

    e0,e1 the filed and routed events (the insert queues them for the
          statistics projector, by trigger)
    x0..  further rows of the case with no key of their own to wait for
          (a content-check row when WeChat asked for review or could not judge)
    idem  the idempotency answer
    media the claimed uploads, attached
    n     the day's counter, +1 (insert-or-update), RETURNING the number
    c     the complaint, numbered from n
    note  the resident's notice, its text and data numbered from c

The day's counter row is what every filing waits for, and it stays locked
from its update to the commit (the WAL flush included). So the rows that do
not need the number are written before it is taken: the main query reads
one scalar subquery per part, in the order above, and PostgreSQL runs each
part when its subquery is first read, left to right (a part nobody reads,
the notice, runs when the query ends). Foreign keys are checked at the end
of the statement, so events may precede their complaint. The order is a
matter of speed only: any order writes the same rows, all or none, so a
failure anywhere rolls the counter back too and numbers stay gapless.

Filings beyond ``YDT_FILING_STATEMENTS_IN_FLIGHT`` per process wait for
their turn in the process (``db.filing_turn``) rather than on the counter
row. With sixteen in flight from one process PostgreSQL spent about twice
the CPU per filing it spends with one or two (waits on the row, wake-ups, its
lock table), and the app more; a filing waiting in the process costs
nothing, and takes its turn in the order it came (bench/README.md).

With the resident's admission inside (``admission.parts``: the session
check, the key's record, the rate-limit hits), its columns are read first, so
it runs first, and every part above is written only if it admitted the
filing; refused, the statement writes the record and the hits only.

Values come from the same ORM objects the ORM path would add (built by
``filing.build_case``), bound as parameters typed by each column, so the
column lists follow the models: ``tests/complaints/test_filing_sql.py`` files
the same case both ways and compares every column of every row. They are
read off the objects straight into the driver's order (``_Rows``: a plan per
compiled statement of which object and attribute each parameter is), not
gathered into dicts first; the paths through ``session.execute`` (PgBouncer)
take the same values by name. SQLite keeps the ORM path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Date,
    Integer,
    String,
    any_,
    bindparam,
    cast,
    func,
    inspect,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import admission
from app.core import db, driver
from app.models import (
    Complaint,
    ComplaintEvent,
    ContentCheck,
    IdempotencyRecord,
    Media,
    Notification,
    TrackingCounter,
)

# Rows a filing may add beside its case (``insert_case(extra=...)``).
_MODELS: dict[str, Any] = {ContentCheck.__tablename__: ContentCheck}

# Where the notice's text carries the number, replaced inside the statement.
NUMBER = "⟦tracking_no⟧"


def supported(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _serial(column: Any) -> bool:
    return bool(
        column.primary_key
        and isinstance(column.type, Integer)
        and column.autoincrement in (True, "auto")
    )


@dataclass(frozen=True, slots=True)
class _Column:
    key: str  # the mapped attribute
    name: str  # the table column
    default: Any  # a scalar default, a callable one, or None
    callable_default: bool
    serial: bool


_LAYOUTS: dict[type, tuple[_Column, ...]] = {}


def _layout(model: type) -> tuple[_Column, ...]:
    """The mapped columns of ``model``, read once: walking the mapper and each
    column's default on every filing was a tenth of its CPU (bench/)."""
    found = _LAYOUTS.get(model)
    if found is None:
        out = []
        mapper: Any = inspect(model)
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            default = column.default
            out.append(
                _Column(
                    key=prop.key,
                    name=column.name,
                    # Python-side defaults only, as the ORM applies them on
                    # flush; a SQL expression default is the database's to fill.
                    default=default.arg
                    if default is not None and (default.is_scalar or default.is_callable)
                    else None,
                    callable_default=default is not None and bool(default.is_callable),
                    serial=_serial(column),
                )
            )
        found = _LAYOUTS[model] = tuple(out)
    return found


def row_values(obj: Any) -> dict[str, Any]:
    """Column -> value for a transient ORM object, with the Python-side
    defaults the ORM would apply on flush; serial keys left to the sequence.

    Values are read from the instance's dict: on a transient object an unset
    attribute reads as None either way, without the instrumented getter."""
    out: dict[str, Any] = {}
    state = obj.__dict__
    for c in _layout(type(obj)):
        value = state.get(c.key)
        if value is None and c.default is not None:
            value = c.default(None) if c.callable_default else c.default
        if value is None and c.serial:
            continue
        out[c.name] = value
    return out


def _binds(model: Any, prefix: str) -> dict[str, Any]:
    """A typed bind parameter per written column, named ``prefix`` + column."""
    return {
        c.name: bindparam(f"{prefix}{c.name}", type_=c.type)
        for c in model.__table__.columns
        if not _serial(c)
    }


def _params(obj: Any, prefix: str) -> dict[str, Any]:
    values = row_values(obj)
    return {f"{prefix}{c.name}": values.get(c.name) for c in _layout(type(obj)) if not c.serial}


# One step per positional parameter of a compiled filing statement: where its
# value comes from (an object's slot in ``_Rows.objects``, or -1 for the loose
# parameters), the key there, its default and whether that is callable, and
# the column type's bind processor.
_Step = tuple[int, str, Any, bool, driver.Processor]
_PLANS: dict[int, tuple[driver.Compiled, tuple[_Step, ...]]] = {}


def _plan(compiled: driver.Compiled, sources: dict[str, tuple[int, type]]) -> tuple[_Step, ...]:
    """How to read each of the statement's parameters off the objects, worked
    out once per compiled statement: a row's column ``name`` is bound as
    ``prefix + name`` (``_binds``), the prefix naming its object."""
    found = _PLANS.get(id(compiled))
    if found is not None and found[0] is compiled:
        return found[1]
    steps: list[_Step] = []
    for name, default, processor in compiled.binds:
        step: _Step = (-1, name, default, False, processor)
        prefix, _, column = name.partition("_")
        source = sources.get(prefix + "_")
        if source is not None:
            by_name = {c.name: c for c in _layout(source[1])}
            c = by_name.get(column)
            if c is not None and not c.serial:
                step = (source[0], c.key, c.default, c.callable_default, processor)
        steps.append(step)
    plan = tuple(steps)
    _PLANS[id(compiled)] = (compiled, plan)
    return plan


@dataclass(frozen=True, slots=True)
class _Rows:
    """A filing's parameters as the objects that hold them (``driver.Prebound``)."""

    objects: tuple[Any, ...]
    sources: dict[str, tuple[int, type]]  # a bind prefix -> (slot in objects, model)
    loose: dict[str, Any]  # the parameters of no row: the day, the media, the admission

    def arguments(self, compiled: driver.Compiled) -> list[Any]:
        states = [obj.__dict__ for obj in self.objects]
        loose = self.loose
        out: list[Any] = []
        append = out.append
        for source, key, default, callable_default, processor in _plan(compiled, self.sources):
            if source < 0:
                value = loose.get(key, default)
            else:
                # As ``row_values``: the instance's dict, then the Python-side default.
                value = states[source].get(key)
                if value is None and default is not None:
                    value = default(None) if callable_default else default
            append(processor(value) if processor is not None and value is not None else value)
        return out

    def mapping(self) -> dict[str, Any]:
        params = dict(self.loose)
        for prefix, (slot, _) in self.sources.items():
            params |= _params(self.objects[slot], prefix)
        return params


@dataclass
class Idempotent:
    record_id: int
    status_code: int
    response: dict[str, Any]


# Built once per shape and reused: SQLAlchemy then skips walking ~100 values
# for a cache key on every filing, and reuses the compiled SQL.
_STATEMENTS: dict[
    tuple[int, bool, tuple[str, ...], bool, str | None, tuple[bool, int] | None], Any
] = {}


def _statement(
    events: int,
    notice: bool,
    extra: tuple[str, ...],
    idem: bool,
    media: str | None,
    admit: tuple[bool, int] | None,
) -> Any:
    key = (events, notice, extra, idem, media, admit)
    found = _STATEMENTS.get(key)
    if found is not None:
        return found
    # With the admission inside (admission.parts): its columns are read first,
    # so it runs first, and every row of the case is written only if admitted.
    gate = admission.parts(admit) if admit is not None else None
    admitted: Any = gate.admitted if gate is not None else true()
    # Parts that do not need the number: read first, so written before it is drawn.
    early: list[Any] = []
    for i in range(events):
        values = _binds(ComplaintEvent, f"e{i}_")
        early.append(
            pg_insert(ComplaintEvent)
            .from_select(list(values), select(*values.values()).where(admitted))
            .returning(ComplaintEvent.id)
            .cte(f"e{i}")
        )
    for i, table_name in enumerate(extra):
        model = _MODELS[table_name]
        values = _binds(model, f"x{i}_")
        early.append(
            pg_insert(model)
            .from_select(list(values), select(*values.values()).where(admitted))
            .returning(model.id)
            .cte(f"x{i}")
        )
    if idem:
        response = IdempotencyRecord.__table__.c.response
        early.append(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == bindparam("i_id", type_=Integer))
            .values(
                status_code=bindparam("i_status", type_=Integer),
                response=bindparam("i_response", type_=response.type),
            )
            .returning(IdempotencyRecord.id)
            .cte("idem")
        )
    if media is not None:
        table = Media.__table__
        attached: dict[str, Any] = {
            "status": bindparam("m_status", type_=table.c.status.type),
            "attached_to": bindparam("m_attached_to", type_=table.c.attached_to.type),
            "attached_at": bindparam("m_attached_at", type_=table.c.attached_at.type),
            "verified_at": None,
        }
        if media == "forget_owner":
            attached["owner_citizen_id"] = None
        early.append(
            update(Media)
            # ANY of an array, not IN: the statement is compiled once (app/core/driver.py).
            .where(Media.id == any_(bindparam("m_ids", type_=ARRAY(table.c.id.type))), admitted)
            .values(**attached)
            .returning(Media.id)
            .cte("media")
        )
    counter = (
        pg_insert(TrackingCounter)
        .from_select(
            ["day", "value"],
            select(bindparam("day", type_=Date), literal(1, type_=Integer)).where(admitted),
        )
        .on_conflict_do_update(
            index_elements=[TrackingCounter.day], set_={"value": TrackingCounter.value + 1}
        )
        .returning(TrackingCounter.value)
        .cte("n")
    )
    case_values = _binds(Complaint, "c_")
    case_values["tracking_no"] = (
        bindparam("prefix", type_=String) + func.lpad(cast(counter.c.value, String), 6, "0")
    ).label("tracking_no")
    case = (
        pg_insert(Complaint)
        .from_select(list(case_values), select(*case_values.values()).select_from(counter))
        .returning(Complaint.tracking_no)
        .cte("c")
    )
    note: list[Any] = []  # read by nobody: written when the query ends, after the case
    if notice:
        values = _binds(Notification, "n_")
        values["body"] = func.replace(values["body"], literal(NUMBER), case.c.tracking_no)
        # The template slots carry the number too (app/notifications/templates.py).
        values["data"] = cast(
            cast(values["data"], JSONB).op("||")(
                func.jsonb_build_object(literal("tracking_no"), case.c.tracking_no)
            ),
            JSON,
        )
        note.append(
            pg_insert(Notification)
            .from_select(list(values), select(*values.values()).select_from(case))
            .cte("note")
        )
    # Scalar subqueries are run when first read, left to right: the early
    # parts, then the counter and the case (its number is the last column).
    stmt = select(
        *(gate.columns if gate is not None else ()),
        *(select(func.count()).select_from(part).scalar_subquery() for part in early),
        select(case.c.tracking_no).scalar_subquery(),
    ).add_cte(*(gate.ctes if gate is not None else ()), *early, counter, case, *note)
    _STATEMENTS[key] = stmt
    return stmt


def prepare(
    *,
    complaint: Complaint,
    events: Sequence[ComplaintEvent],
    day: date,
    prefix: str,
    notification: Notification | None = None,
    extra: Sequence[Any] = (),
    media: Sequence[Media] = (),
    idempotent: Idempotent | None = None,
    admitting: admission.Answered | None = None,
) -> tuple[Any, _Rows]:
    """``insert_case``'s statement and its parameters, as the objects that hold them."""
    loose: dict[str, Any] = {"day": day, "prefix": f"{prefix}{day:%Y%m%d}-"}
    objects: list[Any] = [complaint]
    sources: dict[str, tuple[int, type]] = {"c_": (0, Complaint)}
    if notification is not None:
        sources["n_"] = (len(objects), Notification)
        objects.append(notification)
    for i, event in enumerate(events):
        sources[f"e{i}_"] = (len(objects), ComplaintEvent)
        objects.append(event)
    for i, row in enumerate(extra):
        sources[f"x{i}_"] = (len(objects), type(row))
        objects.append(row)
    if idempotent is not None:
        loose |= {
            "i_id": idempotent.record_id,
            "i_status": idempotent.status_code,
            "i_response": idempotent.response,
        }
    media_mode = None
    if media:
        first = media[0]
        media_mode = "forget_owner" if first.owner_citizen_id is None else "keep_owner"
        loose |= {
            "m_ids": [m.id for m in media],
            "m_status": first.status,
            "m_attached_to": first.attached_to,
            "m_attached_at": first.attached_at,
        }
    if admitting is not None:
        loose |= admitting.params
    stmt = _statement(
        len(events),
        notification is not None,
        tuple(row.__tablename__ for row in extra),
        idempotent is not None,
        media_mode,
        admitting.shape if admitting is not None else None,
    )
    return stmt, _Rows(tuple(objects), sources, loose)


async def insert_case(
    session: AsyncSession,
    *,
    complaint: Complaint,
    events: Sequence[ComplaintEvent],
    day: date,
    prefix: str,
    notification: Notification | None = None,
    extra: Sequence[Any] = (),
    media: Sequence[Media] = (),
    idempotent: Idempotent | None = None,
    admitting: admission.Answered | None = None,
) -> tuple[Any, ...]:
    """Write every row of a new case in one statement; returns its row, the
    number last (None when ``admitting``, run inside, refused the case: its
    columns come first, ``admission.settle`` reads them).

    ``complaint.tracking_no`` is replaced by the counter's next number; a
    notification's body may carry ``NUMBER`` where the number goes (its data
    gets the number as ``tracking_no``); ``extra`` rows (models in ``_MODELS``)
    go in as they are. The media
    rows must already hold their attached values (``media_service.attach``),
    the same for every one of them.
    """
    stmt, rows = prepare(
        complaint=complaint,
        events=events,
        day=day,
        prefix=prefix,
        notification=notification,
        extra=extra,
        media=media,
        idempotent=idempotent,
        admitting=admitting,
    )
    # On the driver connection: about 120 values, which SQLAlchemy's execution
    # layer walked on every filing (app/core/driver.py).
    async with db.filing_turn(session):
        found = await driver.first(session, stmt, driver.Prebound(rows.arguments, rows.mapping))
    assert found is not None  # one row, always: the main query has no FROM
    return found


# SQLite: one INSERT per row, built once per model (``insert_rows``).
_ROW_INSERTS: dict[type, Any] = {}


def _row_insert(model: type) -> Any:
    found = _ROW_INSERTS.get(model)
    if found is None:
        table: Any = model.__table__  # type: ignore[attr-defined]
        found = _ROW_INSERTS[model] = table.insert().values(_binds(model, "r_"))
    return found


async def insert_rows(session: AsyncSession, rows: Sequence[Any]) -> None:
    """A new case's rows on SQLite, in order, in the session's transaction.

    The ORM's flush of the same rows (the case, its events, its notice, a
    content check) was a unit of work and three or four hops to aiosqlite's
    thread per row; here each row is one prebuilt INSERT and one hop
    (``driver.in_transaction``), its values read off the object as the
    PostgreSQL statement reads them (``_Rows``). Serial keys are left to the
    database and not read back: as on PostgreSQL, only the case is kept in
    the session afterwards (``filing.write_case``)."""
    for obj in rows:
        model = type(obj)
        values = _Rows((obj,), {"r_": (0, model)}, {})
        await driver.in_transaction(
            session, _row_insert(model), driver.Prebound(values.arguments, values.mapping)
        )
