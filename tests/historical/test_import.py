"""历史件补录 (issue 15, item 3): cases from before the system, with their real
dates and outcome, chained like any other, left out of on-time figures; a bad
batch is refused whole with every problem listed."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit import state as audit_state
from app.complaints.events import compute_hash
from app.core.chain import first_break
from app.models import Complaint, ComplaintEvent
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")
URL = "/api/v1/staff/historical-cases"


def closed_row(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "channel": "letter",
        "item_code": "0101",
        "region_code": VILLAGE,
        "content": "来信反映村里2024年财务收支没有公开。",
        "received_at": "2025-03-10T09:30:00+08:00",
        "accepted_at": "2025-03-11T10:00:00+08:00",
        "closed_at": "2025-04-02T16:00:00+08:00",
        "outcome": "closed",
        "result": "已督促村委会补公开2024年财务收支。",
        "contact_name": "刘大爷",
        "contact_phone": "13500005555",
    }
    row.update(kw)
    return row


def rejected_row(**kw: Any) -> dict[str, Any]:
    row = closed_row(
        content="来电反映邻里纠纷，不属于纪检监察职责。",
        channel="phone",
        received_at="2025-05-06T09:00:00+08:00",
        closed_at="2025-05-07T09:00:00+08:00",
        outcome="rejected",
        result="不属于受理范围，已告知向人民调解委员会反映。",
    )
    del row["accepted_at"]
    row.update(kw)
    return row


@pytest.fixture
async def admin(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "hist.admin", StaffRole.admin)
    return await login(client, "hist.admin")


async def _count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Complaint))).scalar_one())


async def test_imported_cases_carry_real_dates_and_outcome_and_verify(
    client: AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    resp = await client.post(URL, headers=admin, json={"rows": [closed_row(), rejected_row()]})
    assert resp.status_code == 201, resp.text
    done = resp.json()
    assert done["count"] == 2 and [i["row"] for i in done["items"]] == [1, 2]
    closed, rejected = done["items"]
    assert closed["tracking_no"].startswith("DZ20250310-")  # numbered on its real day
    case = (await client.get(f"/api/v1/staff/complaints/{closed['id']}", headers=admin)).json()
    assert case["status"] == "closed" and case["historical"] is True
    assert case["result"] == "已督促村委会补公开2024年财务收支。"
    when = {e["kind"]: datetime.fromisoformat(e["at"]) for e in case["events"]}
    assert when["filed"] == datetime.fromisoformat("2025-03-10T09:30:00+08:00")
    assert when["accepted"] == datetime.fromisoformat("2025-03-11T10:00:00+08:00")
    assert when["closed"] == datetime.fromisoformat("2025-04-02T16:00:00+08:00")
    assert [e["kind"] for e in case["events"]][-1] == "imported"
    assert case["reporter"]["name"] == "刘大爷"
    other = (await client.get(f"/api/v1/staff/complaints/{rejected['id']}", headers=admin)).json()
    assert other["status"] == "rejected" and other["historical"] is True
    # Chained like any other case, and its row replays from its events.
    for cid in (closed["id"], rejected["id"]):
        chain = list(
            (
                await session.execute(
                    select(ComplaintEvent)
                    .where(ComplaintEvent.complaint_id == cid)
                    .order_by(ComplaintEvent.seq)
                )
            ).scalars()
        )
        row = await session.get(Complaint, cid)
        assert row is not None and first_break(chain, compute_hash) is None
        assert audit_state.case_mismatches(row, audit_state.replay_case(chain)) == []


async def test_historical_cases_count_but_not_in_on_time_figures(
    client: AsyncClient, admin: dict[str, str]
) -> None:
    resp = await client.post(URL, headers=admin, json={"rows": [closed_row(), rejected_row()]})
    assert resp.status_code == 201, resp.text
    stats = await client.get(
        "/api/v1/staff/stats/overview",
        headers=admin,
        params={"region_code": VILLAGE, "from": "2025-03-01", "to": "2025-05-31"},
    )
    assert stats.status_code == 200, stats.text
    totals = stats.json()["totals"]
    assert (totals["received"], totals["closed"], totals["closed_untimed"]) == (2, 1, 1)
    assert totals["closed_on_time"] == 0 and totals["on_time_rate"] is None
    assert totals["avg_handling_days"] is None
    assert stats.json()["same_day_feedback"]["accepted"] == 0  # no notices were owed


async def test_a_bad_batch_lists_every_bad_row_and_imports_nothing(
    client: AsyncClient, admin: dict[str, str], session: AsyncSession
) -> None:
    before = await _count(session)
    rows = [
        closed_row(),
        closed_row(item_code="9999"),
        closed_row(closed_at="2025-03-01T09:00:00+08:00", contact_phone="123"),
        rejected_row(region_code="511702005000"),  # a township, not a village
        closed_row(closed_at="2099-01-01T09:00:00+08:00"),
    ]
    resp = await client.post(URL, headers=admin, json={"rows": rows})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_rows"
    listed = {(e["row"], e["field"]) for e in body["rows"]}
    assert {(2, "item_code"), (3, "closed_at"), (3, "contact_phone"), (4, "region_code")} <= listed
    assert (5, "closed_at") in listed and not any(r == 1 for r, _ in listed)
    assert await _count(session) == before
    unknown = await client.post(URL, headers=admin, json={"rows": [closed_row(extra="x")]})
    assert unknown.status_code == 422


async def test_only_an_admin_or_a_commission_imports_and_only_its_region(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "hist.town", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "hist.county", StaffRole.supervisor, unit_code="JW-511702")
    await make_staff(connection, "hist.other", StaffRole.supervisor, unit_code="JW-511781")
    town = await login(client, "hist.town")
    assert (await client.post(URL, headers=town, json={"rows": [closed_row()]})).status_code == 403
    county = await login(client, "hist.county")
    ok = await client.post(URL, headers=county, json={"rows": [closed_row()]})
    assert ok.status_code == 201, ok.text
    other = await login(client, "hist.other")
    away = await client.post(URL, headers=other, json={"rows": [closed_row()]})
    assert away.status_code == 400 and away.json()["rows"][0]["field"] == "region_code"


def sheet(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    head = ["渠道", "事项编码", "村（社区）编码", "反映内容", "收到时间", "受理时间"]
    ws.append([*head, "办结时间", "办理结果类型", "办理结果", "反映人", "联系电话"])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


GOOD = [
    "来信",
    "0101",
    VILLAGE,
    "来信反映村务公开栏长期空白。",
    datetime(2025, 6, 3, 9, 0),
    datetime(2025, 6, 4, 9, 0),
    datetime(2025, 6, 20, 17, 0),
    "办结",
    "已督促整改。",
    "周大姐",
    "13400006666",
]


async def test_xlsx_import_and_its_row_numbers(client: AsyncClient, admin: dict[str, str]) -> None:
    files = {"file": ("history.xlsx", sheet([GOOD]), "application/octet-stream")}
    check = await client.post(f"{URL}.xlsx", headers=admin, files=files, data={"dry_run": "true"})
    assert check.status_code == 201 and check.json() == {"count": 1, "items": [], "dry_run": True}
    resp = await client.post(f"{URL}.xlsx", headers=admin, files=files)
    assert resp.status_code == 201, resp.text
    item = resp.json()["items"][0]
    assert item["row"] == 2 and item["tracking_no"].startswith("DZ20250603-")
    bad = [GOOD, [*GOOD[:7], "办完了", *GOOD[8:]], [], [*GOOD[:1], "0101", VILLAGE, "短"]]
    resp = await client.post(
        f"{URL}.xlsx",
        headers=admin,
        files={"file": ("history.xlsx", sheet(bad), "application/octet-stream")},
    )
    assert resp.status_code == 400, resp.text
    rows = {e["row"] for e in resp.json()["rows"]}
    assert rows == {3, 5}  # Excel rows; the blank line 4 is skipped
    junk = await client.post(
        f"{URL}.xlsx",
        headers=admin,
        files={"file": ("x.xlsx", b"not a sheet", "application/octet-stream")},
    )
    assert junk.status_code == 400 and junk.json()["error"] == "invalid_rows"
