"""The committed OpenAPI document is generated here; a test compares it with the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from app.core.config import Settings


def build_openapi() -> dict[str, Any]:
    from app.main import create_app

    # A throwaway embedded configuration: generating the document must not
    # depend on the caller's environment (or write ./var).
    settings = Settings(
        _env_file=None,
        database_url="sqlite+aiosqlite:///:memory:",
        jwt_secret=SecretStr("openapi-generation-only-secret"),
    )
    app = create_app(settings, configure_logs=False)
    return app.openapi()


def render_openapi() -> str:
    return json.dumps(build_openapi(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def write_openapi(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_openapi(), encoding="utf-8")
    return path
