"""The public summary of a case: what anyone may read about it (Open311, public
listings). The resident's own words, without what identifies a person:
numbers long enough to be a phone, an ID card or an account, e-mail
addresses, and a name introduced as one ("我叫…", "姓名：…", "联系人：…").
Cut to a length a list can show.
"""

from __future__ import annotations

import re

from app.core.schemas import CONTROL_CHARS

SUMMARY_MAX = 140
_LONG_NUMBER = re.compile(r"(?<![0-9])[0-9Xx][0-9Xx\- ]{5,}[0-9Xx](?![0-9])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_NAMED = re.compile(
    r"(我叫|本人叫|我的名字是|姓名[:：]?|联系人[:：]?|反映人[:：]?)\s*[\u4e00-\u9fff]{1,4}"
)


def _has_enough_digits(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return "****" if digits >= 7 else match.group(0)


def public_summary(content: str, *, limit: int = SUMMARY_MAX) -> str:
    text = CONTROL_CHARS.sub("", content)
    text = " ".join(text.split())
    text = _EMAIL.sub("****", text)
    text = _LONG_NUMBER.sub(_has_enough_digits, text)
    text = _NAMED.sub(lambda m: m.group(1) + "**", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
