"""A hostile .xlsx: zip bombs, sheets of a million blank rows or 16,000 columns,
entity bombs, all refused before they cost much; and parsing off the event loop."""

from __future__ import annotations

import asyncio
import io
import os
import time
import zipfile

import pytest
from httpx import AsyncClient
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.errors import PayloadTooLarge
from app.disclosures.rows import InvalidRows
from app.disclosures.xlsx import (
    MAX_INFLATED_BYTES,
    SheetTooLarge,
    check_zip,
    parse_xlsx,
    read_xlsx,
)
from app.models.enums import DisclosureCategory as C
from tests.disclosures.helpers import STAFF, draft, finance, people, sheet

HEADER = ["日期", "摘要", "收入", "支出", "余额", "经办人", "凭证号"]
ROW = ["2026-10-08", "上级拨付村级运转经费", 50000, None, 62000, "李会计", "记-001"]


def _with_member(data: bytes, name: str, payload: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr(name, payload, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def zip_bomb() -> bytes:
    """A real sheet plus one member that inflates 1000-fold (60 MB of zeros)."""
    return _with_member(sheet(HEADER, [ROW]), "xl/media/pad.bin", b"\0" * (60 * 1024 * 1024))


def _workbook_bytes(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def far_row() -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    ws.cell(row=200_000, column=1, value="2026-10-08")
    return _workbook_bytes(wb)


def wide_rows() -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    for r in range(2, 40):
        ws.cell(row=r, column=16_000, value="x")
    return _workbook_bytes(wb)


def entity_bomb() -> bytes:
    """Billion laughs in the sheet itself: one cell's text expands to 10**9 'lol's."""
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    doctype = f'<!DOCTYPE worksheet [<!ENTITY l0 "lol">{lol}]>'
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(sheet(HEADER, [ROW]))) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                xml = body.decode()
                head, _, rest = xml.partition("?>")
                body = (head + "?>" + doctype + rest.replace("李会计", "&l9;", 1)).encode()
            dst.writestr(item, body)
    return out.getvalue()


def test_a_zip_bomb_is_refused_from_the_zip_directory() -> None:
    data = zip_bomb()
    assert len(data) < 1024 * 1024
    started = time.perf_counter()
    with pytest.raises(SheetTooLarge) as exc:
        parse_xlsx(data, C.finance)
    assert time.perf_counter() - started < 1.0  # nothing was inflated
    assert exc.value.status_code == 413 and "压缩" in exc.value.detail


def test_the_inflated_total_is_capped() -> None:
    data = _with_member(sheet(HEADER, [ROW]), "xl/media/a.bin", os.urandom(2 * 1024 * 1024))
    check_zip(data, max_inflated=3 * 1024 * 1024)  # a plain 2 MB picture passes
    with pytest.raises(PayloadTooLarge) as exc:
        check_zip(data, max_inflated=1024 * 1024)
    assert "解压后过大" in exc.value.detail and MAX_INFLATED_BYTES == 50 * 1024 * 1024


@pytest.mark.parametrize("build", [far_row, wide_rows])
def test_blank_rows_and_columns_are_counted_as_they_stream(build: object) -> None:
    assert callable(build)
    data = build()
    started = time.perf_counter()
    with pytest.raises(SheetTooLarge) as exc:
        parse_xlsx(data, C.finance)
    assert time.perf_counter() - started < 10
    assert "行数或单元格过多" in exc.value.detail


def test_an_entity_bomb_is_a_broken_file_not_a_billion_laughs() -> None:
    with pytest.raises(InvalidRows) as exc:
        parse_xlsx(entity_bomb(), C.finance)
    assert "不是有效的 .xlsx" in exc.value.detail


async def test_parsing_leaves_the_event_loop_free() -> None:
    data = sheet(HEADER, [ROW] * 2000)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    rows = await read_xlsx(data, C.finance)
    took = time.perf_counter() - started
    done.set()
    await tick
    assert len(rows) == 2000
    # The loop kept ticking while the sheet was parsed: on the loop there would
    # be one tick at most, after the parse, as long as the parse itself. (A
    # loaded machine stretches every gap, so the count is the proof, not a time.)
    assert len(gaps) >= 3, (gaps, took)
    assert max(gaps) < took, (max(gaps), took)


@pytest.mark.usefixtures("seeded")
async def test_a_zip_bomb_upload_is_a_413_and_writes_nothing(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    events = "SELECT count(*) FROM disclosure_events"
    before = (await connection.execute(text(events))).scalar_one()
    resp = await client.post(
        f"{STAFF}/{d['id']}/rows.xlsx",
        headers=p.clerk,
        files={"file": ("rows.xlsx", zip_bomb(), "application/vnd.ms-excel")},
        data={"expected_version": str(d["lock_version"])},
    )
    assert resp.status_code == 413 and resp.json()["error"] == "sheet_too_large"
    assert (await connection.execute(text(events))).scalar_one() == before
    again = (await client.get(f"{STAFF}/{d['id']}", headers=p.clerk)).json()
    assert again["lock_version"] == d["lock_version"] and again["row_count"] == d["row_count"]
