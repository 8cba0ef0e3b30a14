"""A resident who came by visit, call or letter can follow the case: offline
intake issues a query code unless declined (issue 15, item 2), and takes the
reporter under either spelling (item 10)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")
INTAKE = "/api/v1/staff/complaints"


def letter(**kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "channel": "letter",
        "item_code": "0101",
        "region_code": VILLAGE,
        "content": "来信反映：村里财务三个季度没有公开，公示栏是空的。",
        "contact_name": "赵大爷",
        "contact_phone": "13600003333",
    }
    body.update(kw)
    return body


@pytest.fixture
async def clerk(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "intake.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    return await login(client, "intake.sup")


async def test_a_letter_gets_a_query_code_that_follows_the_case(
    client: AsyncClient, clerk: dict[str, str]
) -> None:
    resp = await client.post(INTAKE, headers=clerk, json=letter())
    assert resp.status_code == 201, resp.text
    filed = resp.json()
    code, no = filed["query_code"], filed["tracking_no"]
    assert isinstance(code, str) and len(code) == 8
    assert filed["tracking_url"].endswith(f"/track?no={no}")
    # contact_name (the online filing's name) is the reporter, not silently dropped.
    assert filed["reporter"]["name"] == "赵大爷"
    followed = await client.get(f"/api/v1/track/{no}", params={"query_code": code.lower()})
    assert followed.status_code == 200, followed.text
    assert followed.json()["tracking_no"] == no and followed.json()["timeline"]
    wrong = await client.get(f"/api/v1/track/{no}", params={"query_code": "AAAAAAAA"})
    assert wrong.status_code == 404
    # Shown once: the case file never shows it again.
    again = await client.get(f"{INTAKE}/{filed['id']}", headers=clerk)
    assert code not in again.text


async def test_a_resident_may_decline_the_query_code(
    client: AsyncClient, clerk: dict[str, str]
) -> None:
    resp = await client.post(INTAKE, headers=clerk, json=letter(decline_query_code=True))
    assert resp.status_code == 201, resp.text
    assert resp.json()["query_code"] is None


async def test_both_spellings_of_the_reporter_work_and_must_agree(
    client: AsyncClient, clerk: dict[str, str]
) -> None:
    old = letter(reporter_name="钱阿姨", reporter_phone="13600004444")
    del old["contact_name"], old["contact_phone"]
    resp = await client.post(INTAKE, headers=clerk, json=old)
    assert resp.status_code == 201 and resp.json()["reporter"]["name"] == "钱阿姨"
    clash = await client.post(INTAKE, headers=clerk, json=letter(reporter_name="孙阿姨"))
    assert clash.status_code == 422
    detail = clash.json()["detail"]
    assert "不一致" in detail and "Value error" not in clash.text
    unknown = await client.post(INTAKE, headers=clerk, json=letter(reporter_id_card="x"))
    assert unknown.status_code == 422 and "不接受此字段" in unknown.json()["detail"]


async def test_older_than_thirty_days_points_to_the_historical_import(
    client: AsyncClient, clerk: dict[str, str], clock: FixedClock
) -> None:
    old = (clock.now() - timedelta(days=40)).isoformat()
    resp = await client.post(INTAKE, headers=clerk, json=letter(received_at=old))
    assert resp.status_code == 400
    assert "历史件补录" in resp.json()["detail"]
    assert "/api/v1/staff/historical-cases" in resp.json()["detail"]
