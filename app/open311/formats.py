"""GeoReport v2 bodies in its two formats: bare JSON arrays and XML.

XML is written with the standard library's ElementTree, which escapes markup
but not characters XML 1.0 forbids (NUL, most C0 controls, lone surrogates,
U+FFFE/U+FFFF): those would make the document unreadable to every parser, so
they are replaced with U+FFFD first.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from fastapi.responses import Response

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# The element each list's items are written as (GeoReport's XML names them).
ITEM_TAGS = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}


class Format(StrEnum):
    json = "json"
    xml = "xml"


def xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return XML_FORBIDDEN.sub("\ufffd", str(value))


def _element(tag: str, value: Any) -> ET.Element:
    node = ET.Element(tag)
    if isinstance(value, Mapping):
        for key, child in value.items():
            node.append(_element(str(key), child))
    elif isinstance(value, list | tuple):
        child_tag = ITEM_TAGS.get(tag, "item")
        for child in value:
            node.append(_element(child_tag, child))
    else:
        node.text = xml_text(value)
    return node


def to_xml(root: str, value: Sequence[Any] | Mapping[str, Any]) -> bytes:
    """``root`` holding ``value``: a list becomes repeated children (``ITEM_TAGS``)."""
    # The specification asks for the declaration as encoding="UTF-8", in those words.
    return XML_DECLARATION + ET.tostring(_element(root, value), encoding="unicode").encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def to_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=_json_default).encode()


def render(
    fmt: Format,
    root: str,
    value: Sequence[Any] | Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if fmt is Format.xml:
        body, media_type = to_xml(root, value), XML_TYPE
    else:
        body, media_type = to_json(value), JSON_TYPE
    return Response(body, status_code=status_code, media_type=media_type, headers=headers)


def error(
    fmt: Format, status_code: int, description: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    """GeoReport's error shape: ``[{code, description}]`` / ``<errors><error>…``."""
    return render(
        fmt,
        "errors",
        [{"code": status_code, "description": description}],
        status_code=status_code,
        headers=headers,
    )


def format_of_path(path: str) -> Format:
    """The format a URL asks for, by its suffix (JSON unless it ends in .xml)."""
    return Format.xml if path.lower().endswith(".xml") else Format.json
