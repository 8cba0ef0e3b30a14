"""WeChat subscribe-message layouts that fit WeChat's field limits by design.

A subscribe message is a template of typed fields (``thing2``,
``character_string1``...). WeChat refuses a message whose field breaks its
type's rule (``thing`` at most 20 characters, ``character_string`` at most 32
letters, digits and symbols, ``phrase`` at most 5 Chinese characters, ``time``
and ``date`` in its formats). So each notice kind puts each piece of content
in a field whose type it always fits: the tracking number in a
``character_string`` (never cut), the status word in a ``phrase``, times in
``time``/``date``, and only free text (a unit's name, a reply) in ``thing``,
shortened at a character boundary with an ellipsis.

A notice stores its pieces by slot name (``tracking_no``, ``status``...);
``YDT_WECHAT_TEMPLATE_FIELDS`` maps each kind's template field keys to slots
(the defaults below match the template chosen in the WeChat public library;
change a key when the template you picked numbers its fields differently).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

# The default layouts are app.core.config.DEFAULT_TEMPLATE_FIELDS (settings own them).
STATUS_WORDS = {
    "filed": "已登记",
    "accepted": "已受理",
    "rejected": "不予受理",
    "replied": "有进展",
    "resolved": "已办结",
    "closed": "已销号",
    "reopened": "重新办理",
    "rating_reminder": "待评价",
}
SLOTS = ("tracking_no", "status", "unit", "summary", "tip", "at", "due")

THING_MAX, STRING_MAX, PHRASE_MAX, NAME_MAX = 20, 32, 5, 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_STRING_OK = re.compile(r"[\x21-\x7e]{1,32}")
_PHRASE_OK = re.compile(r"[\u4e00-\u9fff]{1,5}")
KNOWN_TYPES = ("thing", "character_string", "phrase", "time", "date", "number", "letter", "name")


class TemplateMisfit(ValueError):
    """A value that cannot go into its field without cutting it: a layout error
    (fixed by choosing another field type), never silently truncated."""


def field_type(key: str) -> str:
    """``character_string12`` -> ``character_string``."""
    return key.rstrip("0123456789")


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a character boundary with an ellipsis."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_value(key: str, value: str | datetime, tz: ZoneInfo) -> str:
    kind = field_type(key)
    if kind in ("time", "date"):
        if not isinstance(value, datetime):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as exc:
                raise TemplateMisfit(f"{key}: not a time") from exc
        local = value.astimezone(tz)
        return f"{local:%Y年%m月%d日 %H:%M}" if kind == "time" else f"{local:%Y年%m月%d日}"
    text = value if isinstance(value, str) else value.isoformat()
    if kind in ("thing", "name"):
        return shorten(text, THING_MAX if kind == "thing" else NAME_MAX) or "—"
    if kind in ("character_string", "number", "letter"):
        if not _STRING_OK.fullmatch(text):
            raise TemplateMisfit(f"{key}: {len(text)} characters do not fit a {kind} field")
        return text
    if kind == "phrase":
        if not _PHRASE_OK.fullmatch(text):
            raise TemplateMisfit(f"{key}: not a phrase of at most {PHRASE_MAX} Chinese characters")
        return text
    raise TemplateMisfit(f"{key}: unknown field type {kind}")


def message_data(
    layout: Mapping[str, str], slots: Mapping[str, str], tz: ZoneInfo
) -> dict[str, str]:
    """The ``data`` of one subscribe message: each template field from its slot."""
    return {key: render_value(key, slots.get(slot) or "—", tz) for key, slot in layout.items()}


def check_layouts(layouts: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse a configured layout naming an unknown field type or slot."""
    for kind, layout in layouts.items():
        for key, slot in layout.items():
            if field_type(key) not in KNOWN_TYPES:
                raise ValueError(f"wechat_template_fields[{kind}]: unknown field type {key}")
            if slot not in SLOTS:
                raise ValueError(
                    f"wechat_template_fields[{kind}][{key}]: slot must be one of {', '.join(SLOTS)}"
                )
