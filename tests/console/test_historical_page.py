"""历史件补录 in the console: check, then import, errors by Excel row."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.console.helpers import signed_in
from tests.factories import make_staff
from tests.historical.test_import import GOOD, sheet
from tests.workflow.helpers import TOWN_UNIT

pytestmark = pytest.mark.usefixtures("seeded")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_a_commission_checks_then_imports_a_sheet(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "hp.county", StaffRole.supervisor, unit_code="JW-511702")
    token = await signed_in(client, "hp.county")
    page = await client.get("/console/historical")
    assert page.status_code == 200 and "历史件补录" in page.text
    good = {"file": ("h.xlsx", sheet([GOOD]), XLSX)}
    check = await client.post(
        "/console/historical", data={"csrf_token": token, "dry_run": "1"}, files=good
    )
    assert check.status_code == 200 and "检查通过" in check.text
    done = await client.post("/console/historical", data={"csrf_token": token}, files=good)
    assert done.status_code == 201 and "已补录 1 件" in done.text and "DZ20250603-" in done.text
    bad = {"file": ("h.xlsx", sheet([GOOD, [*GOOD[:3], "短"]]), XLSX)}
    refused = await client.post("/console/historical", data={"csrf_token": token}, files=bad)
    assert refused.status_code == 400 and "第 3 行" in refused.text
    no_csrf = await client.post("/console/historical", data={}, files=good)
    assert no_csrf.status_code == 403


async def test_a_town_cadre_may_not_import(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "hp.town", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await signed_in(client, "hp.town")
    assert (await client.get("/console/historical")).status_code == 403
