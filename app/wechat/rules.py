"""What WeChat's subscribe-message API accepts in each field, checked the way
WeChat checks it (errcode 47003, "argument invalid! data.thing2.value").

Shared by the built-in stand-in (app/wechat/standin.py) and the tests' fake
WeChat, so a notice that real WeChat would refuse is refused in the demo and
in the suite too, not discovered in production.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_RULES: dict[str, re.Pattern[str]] = {
    "thing": re.compile(r"[^\x00-\x1f]{1,20}"),
    "character_string": re.compile(r"[\x21-\x7e]{1,32}"),
    "number": re.compile(r"[0-9.+-]{1,32}"),
    "letter": re.compile(r"[A-Za-z]{1,32}"),
    "phrase": re.compile(r"[\u4e00-\u9fff]{1,5}"),
    "name": re.compile(r"[\u4e00-\u9fff]{1,10}|[A-Za-z .]{1,20}"),
    "time": re.compile(r"(\d{4}年\d{1,2}月\d{1,2}日 )?\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2} \d{2}:\d{2}"),
    "date": re.compile(r"\d{4}年\d{1,2}月\d{1,2}日( \d{1,2}:\d{2})?|\d{4}-\d{2}-\d{2}"),
}


def subscribe_errors(data: Mapping[str, Any]) -> list[str]:
    """The fields of a message's ``data`` that WeChat would refuse ([] if none)."""
    bad: list[str] = []
    for key, wrapped in data.items():
        value = wrapped.get("value") if isinstance(wrapped, Mapping) else None
        rule = _RULES.get(key.rstrip("0123456789"))
        if rule is None or not isinstance(value, str) or not rule.fullmatch(value):
            bad.append(f"data.{key}.value")
    return bad
