from __future__ import annotations

import json
from pathlib import Path

from app.openapi import render_openapi

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.exists(), "openapi/openapi.json is missing: run `ydt openapi`"
    current = json.loads(render_openapi())
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == current, "openapi/openapi.json drifted from the app: run `ydt openapi`"


def test_document_lists_health_outside_the_api_prefix() -> None:
    paths = json.loads(render_openapi())["paths"]
    assert "/healthz" in paths and "/readyz" in paths
    assert all(
        p.startswith("/api/v1/")
        for p in paths
        if p not in ("/healthz", "/readyz", "/media-files/{key}")
        and not p.startswith("/open311/v2/")  # GeoReport v2 beside the API (issue 17)
    )
