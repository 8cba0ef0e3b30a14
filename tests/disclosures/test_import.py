"""Rows from an .xlsx sheet: all or nothing, with Excel row numbers; and
attachments (images, PDF) through the media endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.disclosures.helpers import PUBLIC, STAFF, draft, finance, people, publish, sheet
from tests.mediafiles import png

pytestmark = pytest.mark.usefixtures("seeded")

HEADER = ["日期", "摘要", "收入", "支出", "余额", "经办人", "凭证号"]
GOOD = [
    ["2026-10-08", "上级拨付村级运转经费", 50000, None, 62000, "李会计", "记-001"],
    ["2026-10-15", "村道维修材料款", None, 8600.5, 53399.5, "李会计", "记-002"],
    ["2026-10-28", "办公用品", None, 399.5, 53000, "王主任", "记-003"],
    ["2026-10-30", "农家书屋图书", None, 1000, 52000, "王主任", "记-004"],
]


async def upload(
    client: AsyncClient, h: dict[str, str], d: dict[str, Any], data: bytes, **form: str
) -> Response:
    return await client.post(
        f"{STAFF}/{d['id']}/rows.xlsx",
        headers=h,
        files={"file": ("rows.xlsx", data, "application/vnd.ms-excel")},
        data={"expected_version": str(d["lock_version"]), **form},
    )


async def test_a_good_sheet_replaces_the_rows(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    r = await upload(client, p.clerk, d, sheet(HEADER, GOOD), closing_balance="52000.00")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["row_count"] == 4 and out["lock_version"] == 2
    assert out["rows"][1]["expense"] == "8600.50"
    assert out["totals"]["closing_balance"] == "52000.00"
    assert out["totals"]["expense"] == "10000.00"


async def test_a_bad_sheet_names_every_bad_row_and_writes_nothing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    bad = [list(r) for r in GOOD]
    bad[1][3] = "八千六"  # Excel row 3
    bad[3][0] = "2026-10-32"  # Excel row 5
    r = await upload(client, p.clerk, d, sheet(HEADER, bad), closing_balance="52000.00")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_rows"
    assert sorted({e["row"] for e in body["rows"]}) == [3, 5]
    assert "3" in body["detail"] and "5" in body["detail"]
    after = (await client.get(f"{STAFF}/{d['id']}", headers=p.clerk)).json()
    assert after["lock_version"] == 1 and after["row_count"] == 3
    # A balance broken on one line is named by its Excel row.
    unbalanced = [list(r) for r in GOOD]
    unbalanced[2][4] = 53100  # Excel row 4
    r = await upload(client, p.clerk, d, sheet(HEADER, unbalanced), closing_balance="52000.00")
    assert r.status_code == 400 and [e["row"] for e in r.json()["rows"]] == [4]
    for data in (b"not a spreadsheet", sheet(["日期", "谁知道"], [["2026-10-01", "x"]])):
        r = await upload(client, p.clerk, d, data)
        assert r.status_code == 400 and r.json()["error"] == "invalid_rows", r.text
    for bad_money in ("五万", "1e17", "12.345"):  # the same bounds as the JSON fields
        r = await upload(client, p.clerk, d, sheet(HEADER, GOOD), closing_balance=bad_money)
        assert r.status_code == 422, (bad_money, r.text)
    stale = await upload(client, p.clerk, {**d, "lock_version": 7}, sheet(HEADER, GOOD))
    assert stale.status_code == 409
    huge = await upload(client, p.clerk, d, b"x" * (5 * 1024 * 1024 + 10))
    assert huge.status_code == 413
    after = (await client.get(f"{STAFF}/{d['id']}", headers=p.clerk)).json()
    assert after["lock_version"] == 1 and after["rows"] == d["rows"]


async def test_only_drafts_take_a_sheet(client: AsyncClient, connection: AsyncConnection) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    pub = (await publish(client, p.committee_a, d)).json()
    r = await upload(client, p.clerk, pub, sheet(HEADER, GOOD), closing_balance="52000.00")
    assert r.status_code == 409


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def test_attachments_are_images_or_pdf_and_only_staff_upload_pdf(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)

    async def media(h: dict[str, str], kind: str, name: str, data: bytes, ctype: str) -> Response:
        return await client.post(
            "/api/v1/media", headers=h, data={"kind": kind}, files={"file": (name, data, ctype)}
        )

    pdf = await media(p.clerk, "document", "voucher.pdf", PDF, "application/pdf")
    assert pdf.status_code == 201, pdf.text
    img = await media(p.clerk, "image", "board.png", png(), "image/png")
    assert img.status_code == 201, img.text
    refused = await media(p.resident, "document", "x.pdf", PDF, "application/pdf")
    assert refused.status_code == 415
    ids = [pdf.json()["id"], img.json()["id"]]
    d = await draft(client, p.clerk, finance(media_ids=ids))
    pub = (await publish(client, p.committee_a, d)).json()
    shown = (await client.get(f"{PUBLIC}/{pub['id']}")).json()
    assert [(a["id"], a["content_type"]) for a in shown["attachments"]] == [
        (ids[0], "application/pdf"),
        (ids[1], "image/png"),
    ]
    link = await client.get(shown["attachments"][0]["url"])
    assert link.status_code == 200 and link.content == PDF
    # The same upload cannot be attached to a second disclosure.
    r = await client.post(STAFF, headers=p.clerk, json=finance(period="2026-09", media_ids=ids[:1]))
    assert r.status_code == 409
    # A correction keeps the series' attachments.
    fix = await client.post(
        f"{STAFF}/{pub['id']}/correct", headers=p.clerk, json={"reason": "更正标题错字"}
    )
    assert [a["id"] for a in fix.json()["attachments"]] == ids
