""".env.example is generated from Settings; these fail when the two drift apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core import env_example
from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `ydt env-example` (or `.venv/bin/python -m app.cli env-example`)"


def test_every_setting_has_a_description() -> None:
    missing = env_example.missing_descriptions(Settings)
    assert not missing, (
        f"settings without a description: {', '.join(missing)}. Give each a "
        "Field(description=...) in app/core/config.py, then " + REGENERATE
    )


def test_env_example_is_what_settings_generate() -> None:
    committed = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert committed == env_example.render(Settings), (
        f".env.example has drifted from app/core/config.py Settings: {REGENERATE}"
    )


def test_every_setting_is_in_env_example_once() -> None:
    """Named explicitly, so a drift shows which variable is missing."""
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    for name in Settings.model_fields:
        var = f"YDT_{name.upper()}="
        assert sum(line.startswith(f"# {var}") for line in lines) == 1, var


def test_the_settings_named_in_issue_15_are_documented() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    for var in (
        "YDT_WECHAT_TEMPLATES=",
        "YDT_SIGNOFF_SLOTS=",
        "YDT_CARD_YELLOW_FRACTION=",
        "YDT_CARD_ORANGE_FRACTION=",
        "YDT_NOTIFY_MAX_ATTEMPTS=",
        "YDT_REOPEN_ON_UNSATISFIED=",
        "YDT_CALLBACK_FRACTION=",
        "YDT_MEDIA_GRACE_HOURS=",
    ):
        assert f"# {var}" in text, var


class _Sample(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YDT_")

    slots: list[str] = Field(default=["a", "b"], description="a JSON list")
    templates: dict[str, str] = Field(default_factory=dict, description="a JSON object")
    ratio: float = Field(default=0.25, description="a number")
    folder: Path = Field(default=Path("./var/x"), description="a path")
    enabled: bool = Field(default=False, description="a flag")
    unset: str | None = Field(default=None, description="nothing by default")


def test_defaults_are_written_as_the_environment_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each rendered default, put back into the environment, gives the default."""
    text = env_example.render(_Sample)
    assert "# YDT_SLOTS=" + '["a","b"]' in text and "# YDT_TEMPLATES={}" in text
    assert "# YDT_FOLDER=./var/x" in text and "# YDT_ENABLED=false" in text
    assert "# YDT_UNSET=\n" in text
    for line in text.splitlines():
        if line.startswith("# YDT_") and not line.endswith("="):
            var, _, value = line[2:].partition("=")
            monkeypatch.setenv(var, value)
    assert _Sample() == _Sample.model_construct(**{
        n: f.get_default(call_default_factory=True) for n, f in _Sample.model_fields.items()
    })  # fmt: skip


def test_the_documented_defaults_read_back_as_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Uncommenting every line of .env.example changes no setting: each default is
    written the way the environment is parsed (JSON lists, comma lists, paths)."""
    for var in [v for v in os.environ if v.startswith("YDT_")]:
        monkeypatch.delenv(var)
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for line in env_example.render(Settings).splitlines():
        if line.startswith("# YDT_") and not line.endswith("="):
            var, _, value = line[2:].partition("=")
            monkeypatch.setenv(var, value)
    assert Settings(_env_file=None).model_dump() == defaults.model_dump()  # type: ignore[call-arg]


def test_a_new_setting_without_description_is_named() -> None:
    class Careless(_Sample):
        shiny_new_knob: int = 3

    with pytest.raises(env_example.MissingDescription, match="shiny_new_knob"):
        env_example.render(Careless)


def test_ydt_env_example_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "env.example"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "env-example", "--output", str(out)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("YDT_")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == env_example.render(Settings)
