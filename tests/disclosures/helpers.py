"""A village with its clerk, two committee members, an outsider and a resident."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient, Response
from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, citizen

OTHER_VILLAGE = "511702005002"
STAFF = "/api/v1/staff/disclosures"
PUBLIC = "/api/v1/disclosures"


@dataclass
class People:
    clerk: dict[str, str]
    committee_a: dict[str, str]
    committee_b: dict[str, str]
    outsider: dict[str, str]
    supervisor: dict[str, str]
    resident: dict[str, str]


async def people(client: AsyncClient, connection: AsyncConnection) -> People:
    await make_staff(connection, "d.clerk", StaffRole.clerk, region_code=VILLAGE)
    await make_staff(connection, "d.coma", StaffRole.committee, region_code=VILLAGE)
    await make_staff(connection, "d.comb", StaffRole.committee, region_code=VILLAGE)
    await make_staff(connection, "d.outsider", StaffRole.committee, region_code=OTHER_VILLAGE)
    await make_staff(connection, "d.super", StaffRole.supervisor, unit_code=TOWN_UNIT)
    names = ("d.clerk", "d.coma", "d.comb", "d.outsider", "d.super")
    logins = [await login(client, n) for n in names]
    return People(*logins, resident=await citizen(client, "d.resident"))


def finance_rows() -> list[dict[str, Any]]:
    return [
        {"date": "2026-10-08", "subject": "上级拨付村级运转经费", "income": "50000.00",
         "balance": "62000.00", "handler": "李会计", "voucher_no": "记-001"},
        {"date": "2026-10-15", "subject": "村道维修材料款", "expense": "8600.50",
         "balance": "53399.50", "handler": "李会计", "voucher_no": "记-002"},
        {"date": "2026-10-28", "subject": "办公用品", "expense": "399.50",
         "balance": "53000.00", "handler": "王主任", "voucher_no": "记-003"},
    ]  # fmt: skip


def finance(**kw: Any) -> dict[str, Any]:
    body = {
        "region_code": VILLAGE,
        "category": "finance",
        "period_kind": "month",
        "period": "2026-10",
        "title": "2026年10月村级财务收支公开",
        "body": "如有疑问请联系村务监督委员会，电话 13912345678。",
        "rows": finance_rows(),
        "opening_balance": "12000.00",
        "closing_balance": "53000.00",
    }
    body.update(kw)
    return body


def subsidy(**kw: Any) -> dict[str, Any]:
    body = {
        "region_code": VILLAGE,
        "category": "subsidy",
        "period_kind": "year",
        "period": "2026",
        "title": "2026年耕地地力保护补贴发放名单",
        "rows": [
            {"name": "张三明", "id_number": "11010519491231002X", "item": "耕地地力保护补贴",
             "amount": "1260.00"},
            {"name": "欧阳小明", "item": "耕地地力保护补贴", "amount": "980.40"},
        ],
    }  # fmt: skip
    body.update(kw)
    return body


async def draft(client: AsyncClient, h: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(STAFF, headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def publish(client: AsyncClient, h: dict[str, str], d: dict[str, Any]) -> Response:
    return await client.post(
        f"{STAFF}/{d['id']}/publish",
        headers=h,
        json={"expected_version": d["lock_version"], "note": "已核对凭证"},
    )


async def published(client: AsyncClient, p: People, body: dict[str, Any]) -> dict[str, Any]:
    r = await publish(client, p.committee_a, await draft(client, p.clerk, body))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def sheet(header: list[str], rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(header)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
