"""How JSON columns are written: orjson, with the standard library behind it.

A filing binds five JSON values (its two events' data, the routing trace,
the notice's data, the idempotency answer). The standard library's
``json.dumps`` took about 60 µs of the ~110 µs spent turning a filing's
values into what asyncpg sends (bench/README.md); orjson writes the same
documents in a tenth of that.

The documents stay what they were: the same values, keys in the same order,
floats in the same shortest round-trip form. Only the text differs: no
spaces after separators, and CJK characters as UTF-8 instead of ``\\uXXXX``
escapes (a third of the bytes; PostgreSQL's ``json`` and SQLite keep the text
as given, and every reader decodes it). Nothing reads the stored text as
text: the chain hashes its own canonical form (``chain.canonical``) of the
decoded values.

Where orjson would decide differently from the standard library, the
standard library decides: a value orjson refuses (an integer past 64 bits, a
type it does not know) and the types it would quietly accept that
``json.dumps`` refuses (datetimes, dataclasses: passed through, so they fail
over to ``json.dumps`` and raise as before). A float NaN or infinity, which
``json.dumps`` writes as a token PostgreSQL then refuses, orjson writes as
null; the schemas refuse them at the door (``allow_inf_nan=False``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value)
