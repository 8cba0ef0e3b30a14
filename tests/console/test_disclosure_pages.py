"""The disclosure pages against the service's rules, in-process on SQLite and
PostgreSQL: draft, xlsx import with row errors beside their rows, review by a
second committee member, stale forms, correction, withdrawal, scope."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from httpx import AsyncClient
from openpyxl import Workbook
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.console.helpers import csrf_of, signed_in
from tests.disclosures.helpers import OTHER_VILLAGE
from tests.factories import make_staff
from tests.workflow.helpers import VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")
LOCK = re.compile(r'name="expected_version" value="(\d+)"')
# Fields each form reads and must refuse every hostile value of.
REFUSED = {("edit", "period"), ("edit", "opening_balance"), ("withdraw", "reason")}
HEADER = ["日期", "摘要", "收入", "支出", "余额", "经办人", "凭证号"]


def sheet(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


GOOD = [
    ["2026-10-08", "上级拨付村级运转经费", 50000, None, 62000, "李会计", "记-001"],
    ["2026-10-15", "村道维修材料款", None, 9000, 53000, "李会计", "记-002"],
]
BAD = [
    ["2026-10-08", "上级拨付村级运转经费", 50000, None, 62000, "李会计", "记-001"],
    ["2026-13-40", "村道维修材料款", None, 9000, 53000, "李会计", "记-002"],
]


async def people(connection: AsyncConnection) -> None:
    await make_staff(connection, "pd.clerk", StaffRole.clerk, region_code=VILLAGE)
    await make_staff(connection, "pd.coma", StaffRole.committee, region_code=VILLAGE)
    await make_staff(connection, "pd.other", StaffRole.clerk, region_code=OTHER_VILLAGE)


async def draft(client: AsyncClient, csrf: str) -> int:
    resp = await client.post(
        "/console/disclosures",
        data={
            "csrf_token": csrf,
            "region_code": VILLAGE,
            "category": "finance",
            "period_kind": "month",
            "period": "2026-10",
            "title": "2026年10月村级财务收支公开",
            "body": "如有疑问请联系村务监督委员会。",
            "opening_balance": "12000.00",
        },
    )
    assert resp.status_code == 303, resp.text
    return int(resp.headers["location"].rsplit("/", 1)[1])


async def upload(client: AsyncClient, did: int, data: bytes, version: str) -> Any:
    page = await client.get(f"/console/disclosures/{did}")
    return await client.post(
        f"/console/disclosures/{did}/rows",
        data={
            "csrf_token": csrf_of(page.text),
            "expected_version": version,
            "closing_balance": "53000.00",
        },
        files={"file": ("账目.xlsx", data, "application/octet-stream")},
    )


async def test_clerk_drafts_imports_and_a_committee_member_publishes(
    client: AsyncClient, connection: AsyncConnection, app: Any
) -> None:
    await people(connection)
    csrf = await signed_in(client, "pd.clerk")
    did = await draft(client, csrf)
    page = await client.get(f"/console/disclosures/{did}")
    assert page.status_code == 200 and "导入明细表格" in page.text
    version = LOCK.search(page.text)
    assert version is not None

    bad = await upload(client, did, sheet(BAD), version.group(1))
    assert bad.status_code == 400
    # The bad row is named beside itself, the good one says it is fine.
    row3 = re.search(r'id="sheet-row-3">(.*?)</tr>', bad.text, re.S)
    assert row3 is not None and "日期" in row3.group(1) and "row-bad" in bad.text
    row2 = re.search(r'id="sheet-row-2">(.*?)</tr>', bad.text, re.S)
    assert row2 is not None and "无问题" in row2.group(1)
    assert "还没有明细行" in bad.text  # nothing was imported

    good = await upload(client, did, sheet(GOOD), version.group(1))
    assert good.status_code == 303, good.text
    page = await client.get(f"/console/disclosures/{did}")
    assert "已导入 2 行" in page.text and "村道维修材料款" in page.text
    assert "审核并发布" not in page.text  # a clerk cannot publish
    lock = LOCK.search(page.text)
    assert lock is not None
    refused = await client.post(
        f"/console/disclosures/{did}/publish",
        data={"csrf_token": csrf, "expected_version": lock.group(1)},
    )
    assert refused.status_code == 403 and "监督委员会" in refused.text

    # A stale import form (the version moved) says so and shows the fresh state.
    stale = await upload(client, did, sheet(GOOD), version.group(1))
    assert stale.status_code == 409 and "已被他人修改" in stale.text

    client.cookies.clear()
    csrf = await signed_in(client, "pd.coma")
    page = await client.get(f"/console/disclosures/{did}")
    assert "审核并发布" in page.text
    lock = LOCK.search(page.text)
    assert lock is not None
    done = await client.post(
        f"/console/disclosures/{did}/publish",
        data={"csrf_token": csrf, "expected_version": lock.group(1), "note": "核对无误"},
    )
    assert done.status_code == 303, done.text
    page = await client.get(f"/console/disclosures/{did}")
    assert "已发布" in page.text and "撤回" in page.text

    # Withdrawal needs a reason; then it is withdrawn with it.
    lock = LOCK.search(page.text)
    assert lock is not None
    short = await client.post(
        f"/console/disclosures/{did}/withdraw",
        data={"csrf_token": csrf, "expected_version": lock.group(1), "reason": "错"},
    )
    assert short.status_code == 422 and "撤回原因" in short.text
    gone = await client.post(
        f"/console/disclosures/{did}/withdraw",
        data={"csrf_token": csrf, "expected_version": lock.group(1), "reason": "金额有误需核实"},
    )
    assert gone.status_code == 303
    page = await client.get(f"/console/disclosures/{did}")
    assert "已撤回" in page.text and "金额有误需核实" in page.text


async def test_correction_makes_a_new_version_in_the_history(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await people(connection)
    csrf = await signed_in(client, "pd.clerk")
    did = await draft(client, csrf)
    page = await client.get(f"/console/disclosures/{did}")
    lock = LOCK.search(page.text)
    assert lock is not None
    assert (await upload(client, did, sheet(GOOD), lock.group(1))).status_code == 303
    client.cookies.clear()
    csrf = await signed_in(client, "pd.coma")
    page = await client.get(f"/console/disclosures/{did}")
    lock = LOCK.search(page.text)
    assert lock is not None
    await client.post(
        f"/console/disclosures/{did}/publish",
        data={"csrf_token": csrf, "expected_version": lock.group(1)},
    )
    client.cookies.clear()
    csrf = await signed_in(client, "pd.clerk")
    page = await client.get(f"/console/disclosures/{did}")
    lock = LOCK.search(page.text)
    assert lock is not None
    resp = await client.post(
        f"/console/disclosures/{did}/correct",
        data={"csrf_token": csrf, "expected_version": lock.group(1), "reason": "凭证号填错"},
    )
    assert resp.status_code == 303, resp.text
    new = await client.get(resp.headers["location"])
    assert "第 2 版（本页）" in new.text and "凭证号填错" in new.text
    assert f'href="/console/disclosures/{did}"' in new.text  # the history links version 1


async def test_scope_csrf_and_hostile_input(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await people(connection)
    csrf = await signed_in(client, "pd.clerk")
    did = await draft(client, csrf)
    # Without the CSRF token: 403 and nothing done.
    for path in ("publish", "withdraw", "correct", "edit", "rows"):
        resp = await client.post(f"/console/disclosures/{did}/{path}", data={"reason": "无令牌"})
        assert resp.status_code == 403, path
    assert (await client.post("/console/disclosures", data={"title": "x"})).status_code == 403
    hostile = ["\x00\x1f", "NaN", "9" * 40, "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"), "-1e999"]  # noqa: E501
    for value in hostile:
        for name in ("expected_version", "title", "period", "opening_balance", "reason"):
            for path in ("edit", "withdraw", "correct", "publish"):
                resp = await client.post(
                    f"/console/disclosures/{did}/{path}",
                    data={"csrf_token": csrf, "expected_version": "1", name: value},
                )
                assert resp.status_code < 500, (path, name, value, resp.status_code)
                if name == "expected_version" or (path, name) in REFUSED:
                    assert resp.status_code >= 400, (path, name, value, resp.status_code)
        resp = await client.post(
            "/console/disclosures",
            data={"csrf_token": csrf, "region_code": VILLAGE, "category": "finance",
                  "period_kind": "month", "period": value, "title": value},
        )  # fmt: skip
        assert 400 <= resp.status_code < 500
    not_xlsx = await upload(client, did, b"PK\x03\x04 not a sheet", "1")
    assert 400 <= not_xlsx.status_code < 500
    for bad_id in ("0", "99999999999999", "abc"):
        assert (await client.get(f"/console/disclosures/{bad_id}")).status_code in (404, 422)
    # Another village's clerk: 404, as if it did not exist.
    client.cookies.clear()
    csrf = await signed_in(client, "pd.other")
    assert (await client.get(f"/console/disclosures/{did}")).status_code == 404
    resp = await client.post(
        f"/console/disclosures/{did}/edit",
        data={"csrf_token": csrf, "expected_version": "1", "title": "别人的公开"},
    )
    assert resp.status_code == 404
