"""Idempotency-Key handling shared by filing and uploads.

A retry with the same key and body returns the first answer and creates
nothing; the same key with a different body is a 409. The record is written
inside the request's transaction, so it exists exactly when the work does.

A record must not tie a resident to what they filed (issue 13): the stored
owner is a keyed digest of (scope, owner, key), one per record, so records of
one resident cannot be linked to each other or to the resident, and the
stored answer (which names the case, and an anonymous filer's query code) is
sealed under the identity keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import crypto, driver, keys
from app.core.errors import BadRequest, Conflict
from app.models import IdempotencyRecord


class IdempotencyMismatch(Conflict):
    code = "idempotency_key_reused"


class IdempotencyInFlight(Conflict):
    code = "idempotency_in_flight"


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: dict[str, Any]


def request_hash(payload: Any) -> str:
    """Keyed: a filing's body holds the filer's name and phone, and everything
    else in it is on the case row, so a plain hash could be brute-forced."""
    return crypto.blind(
        keys.current(),
        "idempotency-request",
        json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str),
    )


OWNER_CHARS = 40  # the column's width: 160 bits of HMAC


def owner_digest(scope: str, owner: str, key: str) -> str:
    return crypto.blind(keys.current(), "idempotency-owner", f"{scope}\x00{owner}\x00{key}")[
        :OWNER_CHARS
    ]


def _aad(scope: str, owner: str, key: str) -> str:
    return f"idempotency:{scope}:{owner}:{key}"


def _open(scope: str, owner: str, key: str, stored: dict[str, Any]) -> dict[str, Any]:
    sealed = stored.get("sealed")
    if not crypto.is_sealed(sealed) or len(stored) != 1:
        return stored  # written before answers were sealed
    body: dict[str, Any] = crypto.unseal_json(
        keys.current(), str(sealed), aad=_aad(scope, owner, key)
    )
    return body


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 128 or not key.isascii() or not key.isprintable():
        raise BadRequest("Idempotency-Key 须为 1–128 个可打印 ASCII 字符")
    return key


# Built once per dialect with bind parameters, so SQLAlchemy reuses its
# compiled form instead of building and keying a new insert per request.
_BEGIN: dict[str, Any] = {}


def _begin_statement(dialect: str) -> Any:
    found = _BEGIN.get(dialect)
    if found is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # The table, not the class: an ORM insert executed with a dict would be
        # taken as a bulk insert of that dict instead of bound parameters.
        table: Any = IdempotencyRecord.__table__
        columns = ("scope", "owner", "key", "request_hash", "status_code", "created_at")
        found = _BEGIN[dialect] = (
            insert(table)
            .values({c: bindparam(c, type_=table.c[c].type) for c in columns})
            .on_conflict_do_nothing(index_elements=["scope", "owner", "key"])
            .returning(table.c.id)
        )
    return found


def record_values(
    *, scope: str, owner: str, key: str, fingerprint: str, now: datetime
) -> dict[str, Any]:
    """The columns of a fresh record (the owner digested)."""
    return {
        "scope": scope,
        "owner": owner_digest(scope, owner, key),
        "key": key,
        "request_hash": fingerprint,
        "status_code": 0,
        "created_at": now,
    }


async def begin(
    session: AsyncSession, *, scope: str, owner: str, key: str, fingerprint: str, now: datetime
) -> Replay | IdempotencyRecord:
    """Return the stored answer for a retry, or a fresh record to complete.

    One statement in the common case (a new key): insert-or-nothing, instead
    of a read, a savepoint, an insert and a release. A concurrent first
    attempt makes the insert wait for it, then do nothing; its committed
    answer is read below, as before.
    """
    values = record_values(scope=scope, owner=owner, key=key, fingerprint=fingerprint, now=now)
    stmt = _begin_statement(session.get_bind().dialect.name)
    new_id = await driver.scalar(session, stmt, values)
    if new_id is not None:
        # Not added to the session: complete() writes the answer by id.
        return IdempotencyRecord(id=new_id, **values)
    return await earlier(session, values)


async def earlier(session: AsyncSession, values: dict[str, Any]) -> Replay:
    """The answer of the record ``values`` (``record_values``) found already
    there: a replay, or 409 for another body or a first attempt still running."""
    scope, owner, key = values["scope"], values["owner"], values["key"]
    found = (
        await session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.owner == owner,
                IdempotencyRecord.key == key,
            )
        )
    ).scalar_one()
    if found.request_hash != values["request_hash"]:
        raise IdempotencyMismatch("同一个 Idempotency-Key 已用于内容不同的请求")
    if found.response is None:
        raise IdempotencyInFlight("相同的请求正在处理中，请稍后查看结果")
    return Replay(found.status_code, _open(scope, owner, key, found.response))


def sealed(record: IdempotencyRecord, body: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an answer (what ``complete`` writes)."""
    return {
        "sealed": crypto.seal_json(
            keys.current(), body, aad=_aad(record.scope, record.owner, record.key)
        )
    }


async def complete(
    session: AsyncSession, record: IdempotencyRecord, *, status_code: int, body: dict[str, Any]
) -> None:
    sealed_body = sealed(record, body)
    record.status_code = status_code
    record.response = sealed_body
    await store(session, record.id, status_code=status_code, sealed_body=sealed_body)


_STORE = (
    update(IdempotencyRecord)
    .where(IdempotencyRecord.id == bindparam("record_id", type_=Integer))
    .values(
        status_code=bindparam("status_code", type_=Integer),
        response=bindparam("response", type_=IdempotencyRecord.__table__.c.response.type),
    )
)


async def store(
    session: AsyncSession, record_id: int, *, status_code: int, sealed_body: dict[str, Any]
) -> None:
    """Write an answer already sealed (``sealed``), by the record's id (on
    SQLite in one hop to its thread: ``driver.in_transaction``)."""
    await driver.in_transaction(
        session,
        _STORE,
        {"record_id": record_id, "status_code": status_code, "response": sealed_body},
    )


async def abandon(session: AsyncSession, record_id: int, *, answered: bool = False) -> None:
    """Drop a record whose work failed or was refused (autocommit writers,
    app/complaints/submission.py), so a retry runs instead of waiting.

    Unanswered only, unless ``answered``: a resident's filing whose one
    statement wrote its record already answered and then refused the case
    (over its hourly limit, app/complaints/admission.py). Until this commits a
    retry finds an answer with no case behind it, which
    ``submission.replay_body`` answers as still running."""
    stmt = delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id)
    if not answered:
        stmt = stmt.where(IdempotencyRecord.response.is_(None))
    try:
        await session.execute(stmt)
    except Exception:  # the retry then sees "in flight"; never mask the refusal
        return
