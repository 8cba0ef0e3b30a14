"""Residents, protected filings and a database "dump" for the identity tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import app.models  # noqa: F401  (every table on the metadata)
from app.core.db import Base
from tests.workflow.helpers import VILLAGE, file_case

ACCUSATION_ITEM = "0102"  # 村干部侵占集体资金 and the like: an accusation item
ACCUSATION_TEXT = "村主任把集体资金挪去给自己家修房子，好几万块，大家都看见了"


@dataclass
class Resident:
    headers: dict[str, str]
    id: int
    openid: str


async def resident(client: AsyncClient, name: str) -> Resident:
    resp = await client.post(
        "/api/v1/auth/wechat-login", json={"code": f"ok-{name}", "scene": VILLAGE}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return Resident(
        {"Authorization": f"Bearer {body['access_token']}"}, body["citizen"]["id"], f"openid-{name}"
    )


async def accuse(
    client: AsyncClient, r: Resident, *, name: str, phone: str, **kw: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"item_code": ACCUSATION_ITEM, "content": ACCUSATION_TEXT, **kw}
    return await file_case(client, r.headers, contact_name=name, contact_phone=phone, **body)


async def anonymous(client: AsyncClient, r: Resident, **kw: Any) -> dict[str, Any]:
    return await file_case(
        client, r.headers, anonymous=True, contact_name=None, contact_phone=None, **kw
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


@dataclass
class Row:
    table: str
    values: dict[str, Any]
    text: str  # every column as text, side by side

    def mentions(self, needles: list[str]) -> bool:
        return any(n in self.text for n in needles)


async def dump(session: AsyncSession) -> list[Row]:
    """Every column of every table, as text: what a stolen database reveals."""
    rows: list[Row] = []
    for table in Base.metadata.sorted_tables:
        for found in (await session.execute(select(table))).mappings():
            values = dict(found)
            rows.append(Row(table.name, values, " | ".join(_text(v) for v in values.values())))
    return rows


def citizen_links(rows: list[Row], citizen_id: int, case_needles: list[str]) -> list[str]:
    """Every place a row that names the case also names the citizen.

    A link is a column that refers to citizens (a foreign key, or an actor /
    recipient / owner of kind citizen) holding the id, a "citizen:<id>"
    anywhere, or a JSON "citizen_id": <id>.
    """
    fk_columns = {
        (t.name, c.name)
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if any(fk.column.table.name == "citizens" for fk in c.foreign_keys)
    }
    found: list[str] = []
    for row in rows:
        if f"citizen:{citizen_id}" in row.text:
            found.append(f"{row.table}: 'citizen:{citizen_id}'")
        if not row.mentions(case_needles):
            continue
        v = row.values
        for column, value in v.items():
            if value != citizen_id:
                continue
            kind = v.get(column.replace("_id", "_kind"))
            if (row.table, column) in fk_columns or kind == "citizen":
                found.append(f"{row.table}.{column}")
        if f'"citizen_id": {citizen_id}' in row.text:
            found.append(f"{row.table}: JSON citizen_id")
    return found
