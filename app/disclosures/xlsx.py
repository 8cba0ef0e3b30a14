"""Rows from a village's .xlsx sheet: liberal about headers and cell formats,
strict about values, and every error carries its Excel row number.

An uploaded sheet is hostile until proven otherwise. An .xlsx is a zip of XML:
300 KB can inflate to 300 MB, and parsing that blocks whatever thread does it.
So the zip's directory is read first (member count, declared sizes and each
member's compression ratio; Python's zipfile never inflates a member past its
declared size), openpyxl then sees it with defusedxml installed (no entity
bombs), rows and cells are counted as they stream, and ``read_xlsx`` does all of
it in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from io import BytesIO
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from app.core.errors import PayloadTooLarge
from app.disclosures.rows import (
    _KINDS,
    _ROW_CLASSES,
    BAD_DATE,
    MAX_ROWS,
    DisclosureRow,
    FinanceRow,
    InvalidRows,
    RowError,
    _coerce_date,
    _Kind,
    _label,
    _too_many,
    _validate,
    decimal_from_number,
)
from app.models.enums import DisclosureCategory

MAX_XLSX_BYTES = 5 * 1024 * 1024  # the upload itself
MAX_INFLATED_BYTES = 50 * 1024 * 1024  # all members once unzipped
MAX_MEMBERS = 200
MAX_RATIO = 200  # a sheet's XML compresses 5–50x; bombs, thousands
MAX_LINES = 20_000  # rows iterated, blank ones included (data rows: MAX_ROWS)
MAX_CELLS = 400_000


_CORRUPT = "文件不是有效的 .xlsx 表格，可能已损坏"


class SheetTooLarge(PayloadTooLarge):
    code = "sheet_too_large"


def check_zip(data: bytes, *, max_inflated: int = MAX_INFLATED_BYTES) -> None:
    """Refuse a zip bomb from its directory, before anything is inflated."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return  # not a zip: _open says so in the clerk's words
    if len(members) > MAX_MEMBERS:
        raise SheetTooLarge(
            f"表格文件结构异常（含 {len(members)} 个部件），请用 Excel 另存后再导入"
        )
    total = 0
    for m in members:
        total += m.file_size
        if m.file_size > 1024 * 1024 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise SheetTooLarge("表格文件压缩比异常，疑似“压缩炸弹”，已拒绝导入")
    if total > max_inflated:
        raise SheetTooLarge(
            f"表格解压后过大（上限 {max_inflated // (1024 * 1024)} MB），请删去多余的行、列或图片"
        )


def _bounded(lines: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Rows as they stream, stopped once the sheet is bigger than any real disclosure."""
    cells = number = 0
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except Exception as exc:  # a corrupt sheet: XML, zip or entity errors alike
            raise InvalidRows([RowError(0, None, _CORRUPT)]) from exc
        number += 1
        cells += len(line)
        if number > MAX_LINES or cells > MAX_CELLS:
            raise SheetTooLarge(
                f"表格过大：行数或单元格过多（最多 {MAX_LINES} 行、{MAX_CELLS} 个单元格），"
                "请删去多余的空行和空列"
            )
        yield line


# --- xlsx import -------------------------------------------------------------------


def _norm_header(value: Any) -> str:
    s = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value))).strip("*")
    return re.sub(r"\((元|人民币元)\)$", "", s)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _cell(kind: _Kind, value: Any) -> Any:
    """Excel hands back ints, floats, datetimes and text; turn each into what the field
    means. Raises ValueError (a message without the label) for values that cannot be."""
    if isinstance(value, str):
        return value.strip()
    if kind == "money" and isinstance(value, int | float) and not isinstance(value, bool):
        return decimal_from_number(value)
    if kind == "date":
        if isinstance(value, int | float) and not 10000101 <= value <= 99991231:
            try:
                return _coerce_date(from_excel(value))
            except (ValueError, OverflowError, TypeError):
                raise ValueError(BAD_DATE) from None
        return _coerce_date(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "id" and isinstance(value, float):
        raise ValueError("须设为文本格式填写：数字格式会丢失末几位")
    if kind in ("text", "id"):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, dt.datetime | dt.date | dt.time):
            return value.isoformat()[:10] if isinstance(value, dt.date) else value.isoformat()
        return str(value)
    return value


def _open(data: bytes) -> Workbook:
    try:
        return load_workbook(BytesIO(data), read_only=True, data_only=True)
    except Exception:  # zipfile, XML and openpyxl errors alike: the file is unusable
        if data[:4] == b"\xd0\xcf\x11\xe0":
            msg = "这是旧版 .xls 文件，请在 Excel 中另存为 .xlsx 后再导入"
        else:
            msg = _CORRUPT
        raise InvalidRows([RowError(0, None, msg)]) from None


def _lines(wb: Workbook) -> Iterator[tuple[Any, ...]]:
    ws = wb.worksheets[0] if wb.worksheets else None
    if not isinstance(ws, ReadOnlyWorksheet):
        raise InvalidRows([RowError(0, None, "第一个工作表不是表格")])
    ws.reset_dimensions()  # some generators write a wrong size; never truncate on it
    return _bounded(ws.iter_rows(values_only=True))


def _map_header(
    model: type[DisclosureRow], header: Sequence[Any]
) -> tuple[dict[int, str], set[int]]:
    by_alias = {_norm_header(a): f for f, aliases in model.columns.items() for a in aliases}
    mapped: dict[int, str] = {}
    blank: set[int] = set()
    errors: list[RowError] = []
    for i, value in enumerate(header):
        name = _norm_header(value) if not _is_blank(value) else ""
        if not name:
            blank.add(i)
        elif name == "序号":
            continue
        elif name not in by_alias:
            known = "、".join(a for aliases in model.columns.values() for a in aliases)
            msg = f"无法识别的列“{value}”（{get_column_letter(i + 1)} 列），可用的列：{known}"
            errors.append(RowError(1, str(value), msg))
        elif by_alias[name] in mapped.values():
            field = by_alias[name]
            errors.append(RowError(1, field, f"“{_label(model, field)}”列重复"))
        else:
            mapped[i] = by_alias[name]
    have = set(mapped.values())
    for field, info in model.model_fields.items():
        if info.is_required() and field not in have:
            errors.append(RowError(1, field, f"缺少“{_label(model, field)}”列"))
    if model is FinanceRow and not have & {"income", "expense"}:
        errors.append(RowError(1, "income", "缺少“收入”或“支出”列"))
    if errors:
        raise InvalidRows(errors, detail="表头有误：" + "；".join(e.message for e in errors))
    return mapped, blank


def parse_xlsx(data: bytes, category: DisclosureCategory) -> list[dict[str, Any]]:
    """Rows of the first sheet, validated, as JSON-ready dicts (money as "12.50" strings).

    Errors carry the Excel row numbers the clerk sees, empty rows included.
    CPU-bound: from async code, call ``read_xlsx``."""
    if len(data) > MAX_XLSX_BYTES:
        raise SheetTooLarge(f"表格不能超过 {MAX_XLSX_BYTES // (1024 * 1024)} MB")
    check_zip(data)
    wb = _open(data)
    try:
        return _parse(_ROW_CLASSES[category], _lines(wb))
    finally:
        wb.close()


async def read_xlsx(data: bytes, category: DisclosureCategory) -> list[dict[str, Any]]:
    """``parse_xlsx`` in a worker thread: a large sheet must not stall other requests."""
    return await asyncio.to_thread(parse_xlsx, data, category)


def _parse(model: type[DisclosureRow], lines: Iterator[tuple[Any, ...]]) -> list[dict[str, Any]]:
    header = next(lines, None)
    if header is None or all(_is_blank(v) for v in header):
        raise InvalidRows([RowError(1, None, "第 1 行应为表头，表格是空的")])
    mapped, blank_cols = _map_header(model, header)

    numbered: list[tuple[int, dict[str, Any]]] = []
    errors: list[RowError] = []
    reported: set[tuple[int, str]] = set()
    stray: set[int] = set()
    for number, line in enumerate(lines, start=2):
        if all(_is_blank(v) for v in line):
            continue
        if len(numbered) == MAX_ROWS:
            raise InvalidRows([_too_many(f"超过 {MAX_ROWS} ")])
        raw: dict[str, Any] = {}
        for i, value in enumerate(line):
            if _is_blank(value):
                continue
            field = mapped.get(i)
            if field is None:
                if i in blank_cols or i >= len(header):
                    stray.add(i)
                continue
            try:
                raw[field] = _cell(_KINDS.get(field, "text"), value)
            except ValueError as exc:
                errors.append(RowError(number, field, f"{_label(model, field)}{exc}"))
                reported.add((number, field))
        numbered.append((number, raw))
    for i in sorted(stray):
        errors.append(RowError(1, None, f"{get_column_letter(i + 1)} 列有数据但没有表头"))
    if not numbered:
        raise InvalidRows([RowError(0, None, "表格中没有数据行")])
    good, more = _validate(model, numbered, frozenset(reported))
    if errors or more:
        raise InvalidRows(errors + more)
    return [m.model_dump(mode="json") for m in good]


def sheet_lines(data: bytes) -> list[tuple[Any, ...]]:
    """Every line of the first sheet under the same limits as a disclosure's
    (file size, zip bomb, lines, cells), for other imports (historical cases).
    CPU-bound: call it in a worker thread."""
    if len(data) > MAX_XLSX_BYTES:
        raise SheetTooLarge(f"表格不能超过 {MAX_XLSX_BYTES // (1024 * 1024)} MB")
    check_zip(data)
    wb = _open(data)
    try:
        return list(_lines(wb))
    finally:
        wb.close()


def header_key(value: Any) -> str:
    """A header cell as compared with the known column names (width, spaces, ``*``)."""
    return "" if _is_blank(value) else _norm_header(value)
