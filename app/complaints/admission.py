"""A resident's filing, admitted: who files, the Idempotency-Key, the rate limits.

Before a case is built, a filing checks the resident's session, claims its
Idempotency-Key (a retry returns the first answer and counts nothing) and
counts one hit against the resident's and the address's hourly limits. Done
one by one that is three statements, two of them commits, each a WAL flush.
On PostgreSQL, with the rate-limit counters in the same database
(``DatabaseSharedStore.counts_in``), they are one statement:

    live  the resident's row, only while the token's session works
    rec   the key's record, inserted only if ``live`` found the resident
          (insert-or-nothing: an existing key inserts nothing)
    hit   both counters + 1, only if ``rec`` inserted (with no key: if live)

so a dead session writes nothing, a retry or a duplicate running beside its
first attempt counts nothing, and the answers are those of the separate steps
(401, the stored answer or 409, 429 with the key's record dropped again).

Straight to PostgreSQL the filing session autocommits, so the key's record
and the counts stand on their own, as before. Behind PgBouncer the filing is
one transaction and the statement runs inside it: the record and the counts
commit or roll back with the case (a duplicate waits for its first attempt
and replays it). Counting the hits through the store's own connection there
would hold one server connection while waiting for another, and with every
server connection held by a filing waiting so, the pool deadlocked until its
timeout (found by the bench's PgBouncer run).
``tests/complaints/test_admission.py`` runs both ways. With Redis or on
SQLite the steps run one by one.

With WeChat content security off, a resident's plain filing goes one step
further (``Ticket``): the case is built from the token alone, and the
statement above becomes the head of the case's own statement
(``filing_sql.insert_case``), every row of the case written only if the
counts are within the limits. The key's record goes in already answered, so
a 429 drops it again after the statement (``settle``). A filing that cannot
be built (a bad region) takes the two statements: the admission answers
first, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, and_, bindparam, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.auth.dependencies import LIVE_CITIZEN, CitizenToken, citizen_of
from app.complaints.schemas import ComplaintCreate
from app.core import driver
from app.core.errors import BadRequest, TooManyRequests
from app.core.ratelimit import Limit, enforce_all, judge
from app.core.shared import (
    DatabaseSharedStore,
    SharedStore,
    gated_hit_statement,
    retry_after,
    window_rows,
)
from app.idempotency import service as idempotency
from app.models import Citizen, IdempotencyRecord

SCOPE = "complaint"
WHAT = "提交"


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admission to be run inside the case's own statement (``parts``).

    The case is built first, from the token alone, and the statement then
    writes, in order: the key's record already answered (only while the
    token's session works; nothing if the key is taken), both hits (only if
    the record went in, or with no key, if the session works), and the case
    with everything of it only if no count is over its limit. One round trip
    and one commit instead of two. ``settle`` reads the answer."""

    token: CitizenToken
    limits: tuple[Limit, ...]
    windows: list[tuple[str, datetime]]
    params: dict[str, Any]
    record: dict[str, Any] | None  # the key's record (``idempotency.record_values``)
    rows: int

    def answered(self, status_code: int, body: dict[str, Any]) -> Answered:
        """What the case's statement needs of the admission, with the answer
        a retry will get (sealed as ``idempotency.sealed`` seals it)."""
        shape = (self.record is not None, self.rows)
        if self.record is None:
            return Answered(shape, self.params)
        kept = IdempotencyRecord.built(**self.record)
        sealed = idempotency.sealed(kept, body)
        return Answered(shape, self.params | {"r_status_code": status_code, "r_response": sealed})


@dataclass(frozen=True, slots=True)
class Answered:
    """A ticket's statement shape (``parts``) and its bind parameters."""

    shape: tuple[bool, int]
    params: dict[str, Any]


async def ticket(
    session: AsyncSession,
    *,
    token: CitizenToken,
    shared: SharedStore,
    key_header: str | None,
    body: ComplaintCreate,
    limits: Sequence[Limit],
    now: datetime,
) -> Ticket | None:
    """A ticket, or None where the admission cannot join the case's statement:
    hits counted elsewhere (Redis, SQLite), or a malformed key (``admit``
    answers it, a dead session's 401 first)."""
    if not (isinstance(shared, DatabaseSharedStore) and shared.counts_in(session)):
        return None
    try:
        key = idempotency.check_key(key_header)
    except BadRequest:
        return None
    windows, rows, params, record = await _params(shared, token, key, body, limits, now)
    return Ticket(token, tuple(limits), windows, params, record, rows)


async def _params(
    shared: DatabaseSharedStore,
    token: CitizenToken,
    key: str | None,
    body: ComplaintCreate,
    limits: Sequence[Limit],
    now: datetime,
) -> tuple[list[tuple[str, datetime]], int, dict[str, Any], dict[str, Any] | None]:
    """The bind parameters of the admission's statement, either form: the
    token's, each counter row's (with the lowest limit counted on it: a row
    over it is over, as ``judge`` says) and the key's record."""
    await shared.sweep_if_due(now)  # expired windows, at most once a minute
    windows, rows = window_rows([(x.key, x.window_seconds) for x in limits], now)
    lowest: dict[str, int] = {}
    for (row_key, _), x in zip(windows, limits, strict=True):
        lowest[row_key] = min(x.limit, lowest.get(row_key, x.limit))
    params = token.live_params(now)
    for i, (row_key, ends) in enumerate(rows):
        params |= {f"k{i}": row_key, f"e{i}": ends, f"lk{i}": row_key, f"lv{i}": lowest[row_key]}
    record = None
    if key:
        record = idempotency.record_values(
            scope=SCOPE,
            owner=f"citizen:{token.citizen_id}",
            key=key,
            fingerprint=idempotency.request_hash(body.model_dump(mode="json")),
            now=now,
        )
        params |= {f"r_{name}": value for name, value in record.items()}
    return windows, len(rows), params, record


@dataclass(frozen=True, slots=True)
class Parts:
    """The admission's part of a case's statement: CTEs to add, the columns
    the main query reads first (so they run first), and the condition every
    row of the case is written under."""

    ctes: tuple[Any, ...]
    columns: tuple[Any, ...]
    admitted: Any


_PARTS: dict[tuple[bool, int], Parts] = {}


def parts(shape: tuple[bool, int]) -> Parts:
    found = _PARTS.get(shape)
    if found is not None:
        return found
    with_key, n = shape
    live = LIVE_CITIZEN.cte("live")
    alive: Any = exists(select(literal(1)).select_from(live))
    go = alive
    record_id: Any = literal(None, type_=Integer)
    ctes: list[Any] = [live]
    if with_key:
        rec = _record(go, answered=True)
        ctes.append(rec)
        go = exists(select(rec.c.id))
        record_id = select(rec.c.id).scalar_subquery()
    hit = gated_hit_statement(n, go).cte("hit")
    over = or_(
        *(
            and_(
                hit.c.key == bindparam(f"lk{i}", type_=hit.c.key.type),
                hit.c.counter > bindparam(f"lv{i}", type_=Integer),
            )
            for i in range(n)
        )
    )
    ok = select(and_(go, ~exists(select(literal(1)).select_from(hit).where(over))).label("ok")).cte(
        "ok"
    )
    ctes += [hit, ok]
    found = Parts(
        ctes=tuple(ctes),
        columns=(
            alive.label("alive"),
            record_id.label("record_id"),
            select(func.array_agg(hit.c.key)).scalar_subquery().label("hit_keys"),
            select(func.array_agg(hit.c.counter)).scalar_subquery().label("hit_counts"),
        ),
        admitted=select(ok.c.ok).scalar_subquery().cast(Boolean),
    )
    _PARTS[shape] = found
    return found


async def settle(
    session: AsyncSession, ticket: Ticket, row: Sequence[Any], now: datetime
) -> idempotency.Replay | None:
    """What the statement's admission columns (``parts``) say: None when the
    case was written, the stored answer of a retry, or 401, 409 or 429 (the
    key's record dropped again, so a later retry runs)."""
    alive, record_id, counted_keys, counts = row[:4]
    if not alive:
        raise sessions.expired()
    if ticket.record is not None and record_id is None:
        return await idempotency.earlier(session, ticket.record)
    counted = dict(zip(counted_keys or (), counts or (), strict=True))
    try:
        judge(ticket.limits, retry_after(counted, ticket.windows, now), what=WHAT)
    except TooManyRequests:
        if record_id is not None:
            await idempotency.abandon(session, record_id, answered=True)
        raise
    return None


@dataclass(frozen=True, slots=True)
class Admitted:
    citizen: Citizen
    record: IdempotencyRecord | None  # the key's fresh record, to complete or drop


async def admit(
    session: AsyncSession,
    *,
    token: CitizenToken,
    shared: SharedStore,
    key_header: str | None,
    body: ComplaintCreate,
    limits: Sequence[Limit],
    now: datetime,
) -> Admitted | idempotency.Replay:
    """The resident and the key's record, or the stored answer of a retry.

    Raises 401 (a dead session), 400 (a malformed key), 409 (the key reused
    for another body, or its first attempt still running) or 429."""
    try:
        key = idempotency.check_key(key_header)
    except BadRequest:
        await token.citizen(session, now)  # a dead session answers 401 first
        raise
    if isinstance(shared, DatabaseSharedStore) and shared.counts_in(session):
        return await _in_one_statement(session, token, shared, key, body, limits, now)
    citizen = await token.citizen(session, now)
    record = None
    if key:
        found = await idempotency.begin(
            session,
            scope=SCOPE,
            owner=f"citizen:{citizen.id}",
            key=key,
            fingerprint=idempotency.request_hash(body.model_dump(mode="json")),
            now=now,
        )
        if isinstance(found, idempotency.Replay):
            return found
        record = found
    try:
        # A retry returned above without counting against the limits.
        await enforce_all(shared, limits, now=now, what=WHAT)
    except BaseException:
        if record is not None:
            await idempotency.abandon(session, record.id)
        raise
    return Admitted(citizen, record)


async def _in_one_statement(
    session: AsyncSession,
    token: CitizenToken,
    shared: DatabaseSharedStore,
    key: str | None,
    body: ComplaintCreate,
    limits: Sequence[Limit],
    now: datetime,
) -> Admitted | idempotency.Replay:
    windows, rows, params, values = await _params(shared, token, key, body, limits, now)
    found = await driver.first(session, _statement(values is not None, rows), params)
    if found is None:
        raise sessions.expired()
    citizen = citizen_of(found)
    record_id, counted_keys, counts = found[-3:]
    if values is not None and record_id is None:
        return await idempotency.earlier(session, values)
    record = IdempotencyRecord(id=record_id, **values) if values is not None else None
    counted = dict(zip(counted_keys or (), counts or (), strict=True))
    try:
        judge(limits, retry_after(counted, windows, now), what=WHAT)
    except TooManyRequests:
        if record is not None:
            await idempotency.abandon(session, record.id)
        raise
    return Admitted(citizen, record)


_STATEMENTS: dict[tuple[bool, int], Any] = {}


def _statement(with_key: bool, n: int) -> Any:
    """Built once per shape (with or without a key, counter rows), bind
    parameters for every value, so it is compiled once (app/core/driver.py)."""
    found = _STATEMENTS.get((with_key, n))
    if found is not None:
        return found
    live = LIVE_CITIZEN.cte("live")
    go: Any = exists(select(literal(1)).select_from(live))
    record_id: Any = literal(None, type_=Integer)
    if with_key:
        rec = _record(go, answered=False)
        go = exists(select(rec.c.id))
        record_id = select(rec.c.id).scalar_subquery()
    hit = gated_hit_statement(n, go).cte("hit")
    stmt = select(
        *live.c,
        record_id.label("record_id"),
        select(func.array_agg(hit.c.key)).scalar_subquery().label("hit_keys"),
        select(func.array_agg(hit.c.counter)).scalar_subquery().label("hit_counts"),
    ).select_from(live)
    _STATEMENTS[(with_key, n)] = stmt
    return stmt


def _record(go: Any, *, answered: bool) -> Any:
    """The key's record, inserted only if ``go`` holds and the key is free
    (insert-or-nothing); answered when the case is written by the same
    statement (``parts``), to be answered later otherwise."""
    table: Any = IdempotencyRecord.__table__
    columns: tuple[str, ...] = ("scope", "owner", "key", "request_hash", "status_code")
    columns += ("created_at", "response") if answered else ("created_at",)
    return (
        pg_insert(table)
        .from_select(
            list(columns),
            select(*(bindparam(f"r_{c}", type_=table.c[c].type) for c in columns)).where(go),
        )
        .on_conflict_do_nothing(index_elements=["scope", "owner", "key"])
        .returning(table.c.id)
        .cte("rec")
    )
