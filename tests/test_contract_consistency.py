"""One contract, one way of saying things (issue 15, item 10): lists are
``{items, next_cursor}``, bodies refuse unknown fields, residents read
validation errors in Chinese, every deadline counts working days, and
disclosures take ``expected_version`` on every write."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.core.schemas import RequestModel
from app.models.enums import StaffRole
from tests import support
from tests.disclosures.helpers import STAFF, finance, people, published
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")
API = "/api/v1"


def test_every_json_body_refuses_unknown_fields(app: FastAPI) -> None:
    checked = 0
    for path, route in support.api_routes(app):
        for param in route.dependant.body_params:
            model = param.field_info.annotation
            if not (isinstance(model, type) and hasattr(model, "model_config")):
                continue  # multipart form fields (uploads), not a JSON body
            checked += 1
            assert issubclass(model, RequestModel), f"{path}: {model.__name__}"
            assert model.model_config.get("extra") == "forbid", f"{path}: {model.__name__}"
    assert checked >= 20


async def test_resident_validation_errors_are_chinese(client: AsyncClient) -> None:
    missing = await client.get(f"{API}/track/DZ20261124-000001")  # no query_code
    assert missing.status_code == 422
    body = missing.json()
    assert "Field required" not in missing.text and "缺少必填项" in body["detail"]
    assert all(e["msg"] == e["reason"] for e in body["errors"])
    h = await citizen(client, "contract-1")
    bad = await client.post(
        f"{API}/complaints",
        headers=h,
        json={"item_code": "0101", "region_code": "511702005001", "content": "太短"},
    )
    assert bad.status_code == 422
    assert "Value error" not in bad.text and "Field required" not in bad.text
    for error in bad.json()["errors"]:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in error["msg"]), error


async def test_lists_are_pages_and_need_no_filter(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "contract.admin", StaffRole.admin)
    await make_staff(connection, "contract.other", StaffRole.supervisor, unit_code=TOWN_UNIT)
    admin = await login(client, "contract.admin")
    for path in ("/staff/users", "/staff/callbacks", "/staff/supervision-orders"):
        resp = await client.get(f"{API}{path}?limit=1", headers=admin)
        assert resp.status_code == 200, (path, resp.text)
        body = resp.json()
        assert set(body) == {"items", "next_cursor"} and isinstance(body["items"], list), path
    users = (await client.get(f"{API}/staff/users?limit=1", headers=admin)).json()
    assert len(users["items"]) == 1 and users["next_cursor"] == "1"
    following = await client.get(f"{API}/staff/users?limit=1&cursor=1", headers=admin)
    assert following.json()["items"][0]["id"] != users["items"][0]["id"]


async def test_supervision_order_deadline_counts_working_days(
    client: AsyncClient, connection: AsyncConnection, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))  # a Friday, 10:00 in Dazhou
    resident = await citizen(client, "contract-2")
    filed = await file_case(client, resident)
    await make_staff(connection, "contract.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    sup = await login(client, "contract.sup")
    order = await client.post(
        f"{API}/staff/supervision-orders",
        headers=sup,
        json={"complaint_id": filed["id"], "reason": "请加快办理", "deadline_days": 1},
    )
    assert order.status_code == 201, order.text
    due = datetime.fromisoformat(order.json()["deadline_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    # One working day after Friday is Monday, not Saturday.
    assert (due.date().isoformat(), due.hour) == ("2026-11-30", 23)


async def test_correct_takes_expected_version_like_every_other_write(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    v1 = await published(client, p, finance())
    stale = await client.post(
        f"{STAFF}/{v1['id']}/correct",
        headers=p.clerk,
        json={"reason": "更正标题错字", "expected_version": v1["lock_version"] + 5},
    )
    assert stale.status_code == 409, stale.text
    fix = await client.post(
        f"{STAFF}/{v1['id']}/correct",
        headers=p.clerk,
        json={"reason": "更正标题错字", "expected_version": v1["lock_version"]},
    )
    assert fix.status_code == 201, fix.text
    assert fix.json()["version"] == 2  # the series' version, not the lock
