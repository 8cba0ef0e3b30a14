"""JSON columns are written by orjson where it agrees with the standard
library, and by the standard library where it would not (app/core/jsoncodec.py)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import jsoncodec
from app.models.enums import ComplaintStatus

DOCUMENTS: list[Any] = [
    {},
    [],
    {"状态": "已提交", "trace": ["事项归口 → 镇纪委", "承办干部：张三"], "n": 3, "f": 0.1},
    {"nested": {"a": [1, 2.5, None, True, False, ""]}, "emoji": "👍", "ctl": "a\u0000b\u2028c"},
    {1: "int key", None: "none key", False: "bool key", 2.5: "float key"},
    {"status": ComplaintStatus.accepted},
    {"big": 2**70, "small": -(2**70)},  # past orjson's 64 bits: the standard library writes it
    1e300,
    -0.0,
    "纯文本",
]


@pytest.mark.parametrize("value", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_the_text_decodes_to_what_the_standard_library_would_write(value: Any) -> None:
    text = jsoncodec.dumps(value)
    assert isinstance(text, str)
    assert json.loads(text) == json.loads(json.dumps(value))


def test_key_order_is_kept_and_cjk_is_written_as_itself() -> None:
    text = jsoncodec.dumps({"z": 1, "a": "镇纪委"})
    assert text == '{"z":1,"a":"镇纪委"}'
    assert list(json.loads(text)) == ["z", "a"]


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        {"at": datetime(2026, 12, 7, tzinfo=UTC)},  # orjson would write these; json.dumps refuses
        {"p": _Point(1)},
        {"s": {1, 2}},
        {"b": b"bytes"},
    ],
    ids=["datetime", "dataclass", "set", "bytes"],
)
def test_what_the_standard_library_refuses_is_still_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        jsoncodec.dumps(value)


def test_a_lone_surrogate_is_escaped_as_the_standard_library_escapes_it() -> None:
    """orjson refuses it (not UTF-8); the fallback writes ``\\ud800``, text any
    database takes, where the raw character would fail to encode."""
    text = jsoncodec.dumps({"s": "a\ud800b"})
    assert text == json.dumps({"s": "a\ud800b"})
    text.encode()


def test_a_document_deeper_than_orjson_goes_falls_back() -> None:
    deep: Any = "leaf"
    for _ in range(300):  # orjson stops at 254 levels
        deep = [deep]
    assert json.loads(jsoncodec.dumps(deep)) == deep


async def test_json_columns_round_trip_through_the_engine(engine: AsyncEngine) -> None:
    """Both engines are made with the codec and read back the same values; the
    text PostgreSQL or SQLite keeps is the codec's."""
    meta = MetaData()
    probe = Table(
        "jsoncodec_probe", meta, Column("id", Integer, primary_key=True), Column("doc", JSON)
    )
    value = {"状态": "已提交", "list": [1, 2.5, None]}
    async with engine.connect() as conn:
        await conn.run_sync(meta.create_all)
        try:
            await conn.execute(probe.insert().values(id=1, doc=value))
            assert (await conn.execute(select(probe.c.doc))).scalar_one() == value
            sql = "SELECT CAST(doc AS TEXT) FROM jsoncodec_probe"
            raw = (await conn.exec_driver_sql(sql)).scalar_one()
            assert "已提交" in raw
        finally:
            await conn.run_sync(meta.drop_all)
            await conn.rollback()
