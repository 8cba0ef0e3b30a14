"""A dossier holds no write lock while it checks the case's media.

Exporting a dossier reads every byte of every attached file to check it
against its sha256 (minutes for a case with videos), then renders and packs.
It records the read in a writer's session; on SQLite that session held the
process's writer lock and the database's until the file was sent, and
every resident's filing waited behind a cadre's export. The database is now
read in a short writer's session and the media checked after it ends.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.ledger import evidence
from tests import mediafiles
from tests.workflow.live import VILLAGE, live, new_resident, new_supervisor
from tests.write_lock import http, locks_free

__all__ = ["http", "live"]  # the live app's fixtures, used by name

pytestmark = [
    pytest.mark.usefixtures("seeded"),
    pytest.mark.parametrize("engine", ["sqlite"], indirect=True),
]


@pytest.mark.parametrize("export", ["dossier.zip", "dossier.pdf"])
async def test_no_write_lock_while_a_dossiers_media_are_checked(
    live: FastAPI, http: AsyncClient, monkeypatch: pytest.MonkeyPatch, export: str
) -> None:
    resident = await new_resident(http)
    up = await http.post(
        "/api/v1/media",
        headers=resident,
        data={"kind": "image"},
        files={"file": ("p.png", mediafiles.png())},
    )
    assert up.status_code == 201, up.text
    filed = await http.post(
        "/api/v1/complaints",
        headers=resident,
        json={
            "item_code": "0101",
            "region_code": VILLAGE,
            "content": "村委会账目不公开，附照片。",
            "anonymous": True,
            "media_ids": [up.json()["id"]],
        },
    )
    assert filed.status_code == 201, filed.text
    staff = await new_supervisor(live, http)
    found: list[tuple[bool, bool]] = []
    checked = evidence.check

    async def check_and_probe(*args: Any, **kwargs: Any) -> Any:
        found.append(locks_free(live))
        return await checked(*args, **kwargs)

    monkeypatch.setattr(evidence, "check", check_and_probe)
    resp = await http.get(f"/api/v1/staff/complaints/{filed.json()['id']}/{export}", headers=staff)
    assert resp.status_code == 200, resp.text
    assert found == [(True, True)]
