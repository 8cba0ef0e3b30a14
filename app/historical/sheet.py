"""Historical cases from an .xlsx sheet (header in row 1, Chinese column names),
read under the disclosures' sheet limits; every bad cell is listed with its
Excel row number, and nothing is imported unless every row is good."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from app.core.errors import validation_errors
from app.disclosures import rows as sheet_rows
from app.disclosures import xlsx
from app.historical.schemas import HistoricalCase
from app.models.enums import Channel

COLUMNS: dict[str, tuple[str, ...]] = {
    "channel": ("渠道", "来源", "登记渠道"),
    "item_code": ("事项编码", "事项代码"),
    "region_code": ("村（社区）编码", "村编码", "区划编码", "村(社区)编码"),
    "content": ("反映内容", "内容"),
    "received_at": ("收到时间", "登记时间", "反映时间"),
    "accepted_at": ("受理时间",),
    "closed_at": ("办结时间", "销号时间", "处理时间"),
    "outcome": ("办理结果类型", "结果类型", "结论"),
    "result": ("办理结果", "处理结果", "答复内容"),
    "anonymous": ("匿名",),
    "contact_name": ("反映人", "姓名", "反映人姓名"),
    "contact_phone": ("联系电话", "电话"),
}
CHANNELS = {
    "来访": Channel.visit,
    "来电": Channel.phone,
    "来信": Channel.letter,
    "走访": Channel.door_to_door,
    "走访发现": Channel.door_to_door,
    "代办": Channel.agent,
    "网上": Channel.online,
    "小程序": Channel.online,
}
OUTCOMES = {"办结": "closed", "已办结": "closed", "销号": "closed", "不予受理": "rejected"}
YES = {"是", "匿名", "true", "1", "y", "yes"}
TIMES = ("received_at", "accepted_at", "closed_at")
MAX_ROWS = 500  # as a JSON import; a larger history goes in several sheets


def _value(field: str, value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, str):
        value = value.strip()
    if field == "channel" and isinstance(value, str):
        return CHANNELS.get(value, value)
    if field == "outcome" and isinstance(value, str):
        return OUTCOMES.get(value, value)
    if field == "anonymous":
        return str(value).strip().lower() in YES if value not in (None, "") else False
    if field in TIMES:
        if isinstance(value, str) and value:
            try:
                value = dt.datetime.fromisoformat(value.replace("/", "-"))
            except ValueError:
                return value  # the model names it
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=tz)  # Excel: local time
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(9, 0), tzinfo=tz)
    if field in ("item_code", "region_code", "contact_phone") and isinstance(value, int | float):
        return str(int(value)).zfill(4 if field == "item_code" else 0)
    return value


def parse(data: bytes, tz: ZoneInfo) -> list[tuple[int, HistoricalCase]]:
    """(Excel row, case) for every non-blank row; all problems raised at once."""
    lines = xlsx.sheet_lines(data)
    if not lines:
        raise sheet_rows.InvalidRows([sheet_rows.RowError(0, None, "表格是空的")])
    by_name = {xlsx.header_key(a): f for f, aliases in COLUMNS.items() for a in aliases}
    mapped: dict[int, str] = {}
    errors: list[sheet_rows.RowError] = []
    for i, head in enumerate(lines[0]):
        key = xlsx.header_key(head)
        if key and key != "序号":
            if key not in by_name:
                errors.append(sheet_rows.RowError(1, str(head), f"无法识别的列“{head}”"))
            else:
                mapped[i] = by_name[key]
    for field in ("channel", "item_code", "region_code", "content", "received_at", "closed_at"):
        if field not in mapped.values():
            errors.append(sheet_rows.RowError(1, field, f"缺少“{COLUMNS[field][0]}”列"))
    for field in ("outcome", "result"):
        if field not in mapped.values():
            errors.append(sheet_rows.RowError(1, field, f"缺少“{COLUMNS[field][0]}”列"))
    if errors:
        raise sheet_rows.InvalidRows(
            errors, detail="表头有误：" + "；".join(e.message for e in errors)
        )
    out: list[tuple[int, HistoricalCase]] = []
    for number, line in enumerate(lines[1:], start=2):
        raw = {f: line[i] for i, f in mapped.items() if i < len(line)}
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in raw.values()):
            continue
        values = {f: _value(f, v, tz) for f, v in raw.items() if v not in (None, "")}
        try:
            out.append((number, HistoricalCase.model_validate(values)))
        except ValidationError as exc:
            for e in validation_errors(exc.errors()):
                field = str(e["loc"][0]) if e["loc"] else ""
                label = COLUMNS.get(field, (field,))[0]
                errors.append(sheet_rows.RowError(number, field or None, f"{label}：{e['reason']}"))
    if errors:
        raise sheet_rows.InvalidRows(errors)
    if not out:
        raise sheet_rows.InvalidRows([sheet_rows.RowError(0, None, "表格中没有可导入的行")])
    if len(out) > MAX_ROWS:
        raise sheet_rows.InvalidRows(
            [sheet_rows.RowError(0, None, f"一次最多导入 {MAX_ROWS} 件，请分成几个表格")]
        )
    return out


async def read(data: bytes, tz: ZoneInfo) -> list[tuple[int, HistoricalCase]]:
    """``parse`` in a worker thread: a large sheet must not stall other requests."""
    return await asyncio.to_thread(parse, data, tz)
