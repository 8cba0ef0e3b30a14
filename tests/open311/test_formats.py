"""The XML writer and the public summary, without a database."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from httpx import AsyncClient

from app.complaints.summary import public_summary
from app.open311.formats import to_json, to_xml


def test_forbidden_characters_never_break_the_xml() -> None:
    nasty = "a\x00b\x01c\x1b[31m\x7f\ud800\ufffe\uffff <&> \"'\t\n 路灯 \U0001f600"
    body = to_xml("service_requests", [{"description": nasty, "lat": None, "open": True}])
    root = ET.fromstring(body)  # well-formed: it parses
    text = root.findtext("request/description")
    assert text is not None
    assert "<&>" in text and "路灯" in text and "\U0001f600" in text
    assert not any(ch in text for ch in "\x00\x01\x1b\ud800\ufffe\uffff")
    assert root.findtext("request/lat") == "" and root.findtext("request/open") == "true"
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_lists_are_written_as_the_spec_names_their_items() -> None:
    root = ET.fromstring(
        to_xml("service_definition", {"attributes": [{"values": [{"key": "a", "name": "甲"}]}]})
    )
    assert root.findtext("attributes/attribute/values/value/name") == "甲"


def test_json_is_a_bare_array_with_chinese_unescaped() -> None:
    assert to_json([{"service_name": "路灯"}]) == '[{"service_name": "路灯"}]'.encode()


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("我叫王小明，家门口的路灯坏了", "王小明"),
        ("联系人：张三，电话 138 1234 5678", "5678"),
        ("身份证号51170219800101123X，低保没发", "51170219800101123X"),
        ("有事请发 wang.xm@example.com 联系", "wang.xm@example.com"),
        ("银行卡 6222-0210-0112-3456 没收到补贴", "3456"),
    ],
)
def test_public_summary_masks_what_identifies_a_person(text: str, hidden: str) -> None:
    summary = public_summary(text)
    assert hidden not in summary and "**" in summary


def test_public_summary_keeps_short_numbers_and_is_cut() -> None:
    assert public_summary("3组的路灯坏了2个月") == "3组的路灯坏了2个月"
    long = public_summary("路" * 500)
    assert len(long) == 140 and long.endswith("…")


@pytest.mark.usefixtures("seeded")
async def test_unknown_resources_are_a_geo_report_404(client: AsyncClient) -> None:
    xml = await client.get("/open311/v2/nothing/here.xml")
    assert xml.status_code == 404
    assert ET.fromstring(xml.content).findtext("error/code") == "404"
    assert (await client.post("/open311/v2/services.json")).json()[0]["code"] == 404
