"""``.env.example`` written from the ``Settings`` class, so it cannot forget one.

Every field becomes a commented-out ``YDT_…=default`` line under its
description. Lines stay commented so that ``cp .env.example .env`` changes
nothing by itself: a value copied from here would count as explicitly set
(the embedded default derives ``YDT_PUBLIC_BASE_URL`` from the port it serves
only when it is not set). ``ydt env-example`` writes the file and
tests/core/test_env_example.py fails when it and ``Settings`` drift apart.
"""

from __future__ import annotations

import json
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode

HEADER = """\
# Yidiantong configuration: every setting, its meaning and its default.
# Generated from app/core/config.py (Settings) by `ydt env-example`; do not edit
# by hand, a test fails when this file and Settings disagree.
#
# Each setting is an environment variable with the YDT_ prefix, or a line in
# .env. With none set, the service runs on the embedded default: SQLite at
# ./var/yidiantong.db and media under ./var/media. Lines are commented out:
# uncomment the ones you set (cp .env.example .env alone changes nothing).
"""


class MissingDescription(ValueError):
    """A setting without ``Field(description=...)``: it cannot be documented."""


def missing_descriptions(settings_cls: type[BaseSettings]) -> list[str]:
    return [name for name, field in settings_cls.model_fields.items() if not field.description]


def render_value(field: FieldInfo, value: Any) -> str:
    """A default as it would be written in the environment."""
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (list, tuple, set)) and any(m is NoDecode for m in field.metadata):
        return ",".join(str(v) for v in value)  # parsed by the field's own validator
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, Path):
        text = str(value)
        return text if value.is_absolute() or text.startswith(".") else f"./{text}"
    return str(value)


def _variable(settings_cls: type[BaseSettings], name: str) -> str:
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def render(settings_cls: type[BaseSettings]) -> str:
    """The whole file; refuses settings without a description (naming them)."""
    missing = missing_descriptions(settings_cls)
    if missing:
        raise MissingDescription(
            "settings without a description: "
            + ", ".join(missing)
            + ". Give each Field(description=...) in app/core/config.py, then run "
            "`ydt env-example`."
        )
    blocks = [HEADER]
    for name, field in settings_cls.model_fields.items():
        default = field.get_default(call_default_factory=True, validated_data={})
        comment = textwrap.wrap(
            " ".join(str(field.description).split()), width=76, break_on_hyphens=False
        )
        lines = [f"# {line}" for line in comment]
        lines.append(f"# {_variable(settings_cls, name)}={render_value(field, default)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write(settings_cls: type[BaseSettings], path: Path) -> Path:
    path.write_text(render(settings_cls), encoding="utf-8")
    return path
