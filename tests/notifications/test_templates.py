"""Template layouts fit WeChat's field rules by design (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.core.config import DEFAULT_TEMPLATE_FIELDS
from app.notifications import templates

TZ = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 11, 24, 1, 30, tzinfo=UTC).isoformat()
LONGEST_TRACKING = "ABCDEFGHIJKL20261124-999999"  # a 12-character prefix, the most allowed
REPLY = (
    "经核查，村委会已于十一月二十日在公示栏补公开第三季度财务收支明细，"
    "并对相关责任人进行了提醒谈话。"
)


def slots(kind: str, tracking_no: str = LONGEST_TRACKING) -> dict[str, str]:
    return {
        "tracking_no": tracking_no,
        "status": templates.STATUS_WORDS[kind],
        "unit": "中共达州市通川区纪律检查委员会驻区农业农村局纪检监察组",
        "summary": REPLY,
        "tip": "欢迎评价办理结果",
        "at": AT,
        "due": AT,
    }


@pytest.mark.parametrize("kind", sorted(DEFAULT_TEMPLATE_FIELDS))
def test_every_default_layout_fits_wechat_and_keeps_the_tracking_number_whole(kind: str) -> None:
    data = templates.message_data(DEFAULT_TEMPLATE_FIELDS[kind], slots(kind), TZ)
    assert data["character_string1"] == LONGEST_TRACKING
    for key, value in data.items():
        kind_of = templates.field_type(key)
        if kind_of == "thing":
            assert 1 <= len(value) <= 20
        elif kind_of == "character_string":
            assert len(value) <= 32 and value.isascii()
        elif kind_of == "phrase":
            assert 1 <= len(value) <= 5
        elif kind_of == "time":
            assert value == "2026年11月24日 09:30"
        elif kind_of == "date":
            assert value == "2026年11月24日"
    assert len(templates.STATUS_WORDS[kind]) <= 5


def test_long_text_is_shortened_at_a_character_boundary_with_an_ellipsis() -> None:
    value = templates.render_value("thing3", REPLY, TZ)
    assert len(value) == 20 and value.endswith("…") and value[:-1] == REPLY[:19]
    assert templates.render_value("thing3", "已受理", TZ) == "已受理"
    assert templates.render_value("thing3", "第一行\n第二行\x00", TZ) == "第一行 第二行"


def test_values_that_do_not_fit_their_type_are_refused_not_cut() -> None:
    with pytest.raises(templates.TemplateMisfit):
        templates.render_value("character_string1", "DZ" + "9" * 40, TZ)
    with pytest.raises(templates.TemplateMisfit):
        templates.render_value("character_string1", "编号DZ1", TZ)
    with pytest.raises(templates.TemplateMisfit):
        templates.render_value("phrase2", "正在办理中的事项", TZ)
    with pytest.raises(templates.TemplateMisfit):
        templates.render_value("time4", "昨天", TZ)
    with pytest.raises(templates.TemplateMisfit):
        templates.render_value("amount3", "12", TZ)


def test_a_configured_layout_with_an_unknown_slot_or_type_is_refused() -> None:
    templates.check_layouts(DEFAULT_TEMPLATE_FIELDS)
    with pytest.raises(ValueError, match="slot"):
        templates.check_layouts({"accepted": {"thing2": "openid"}})
    with pytest.raises(ValueError, match="field type"):
        templates.check_layouts({"accepted": {"car_number2": "unit"}})
