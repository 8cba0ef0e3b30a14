"""Corrections are read from reclassify events (kind "reclassified", data
from_item_code/to_item_code), the shape the workflow's reclassify action writes."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ComplaintEvent
from app.taxonomy import model as learned
from app.taxonomy import repository, service
from app.taxonomy.retrain import retrain
from tests.conftest import make_settings
from tests.taxonomy.test_model import ODD_TEXT, TARGET
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

TEXT = "组上收的天然气安装费三年了也没装，组长说钱拿去修路了"


async def _reclassify(session: AsyncSession, cid: str, data: dict[str, object]) -> None:
    seq = await session.scalar(
        select(func.max(ComplaintEvent.seq)).where(ComplaintEvent.complaint_id == cid)
    )
    session.add(
        ComplaintEvent(
            complaint_id=cid,
            seq=(seq or 0) + 1,
            kind=repository.RECLASSIFIED,
            public=False,
            actor_kind="staff",
            note="",
            data=data,
            created_at=datetime(2026, 5, 6, 9, tzinfo=UTC),
            prev_hash="0" * 64,
            hash="1" * 64,
        )
    )
    await session.flush()


async def test_a_reclassification_becomes_a_training_example(
    client: AsyncClient, session: AsyncSession
) -> None:
    filed = await file_case(client, await citizen(client, "corr"), content=TEXT)
    assert (TEXT, "3906") not in await repository.corrections(session)
    await _reclassify(session, filed["id"], {"from_item_code": "0101", "to_item_code": "0102"})
    await _reclassify(session, filed["id"], {"from_item_code": "0102", "to_item_code": "3906"})
    got = await repository.corrections(session)
    assert (TEXT, "3906") in got and (TEXT, "0102") not in got  # the latest one wins
    examples = await service.corrections(session)
    assert any(e.text == TEXT and e.item == "3906" for e in examples)


async def test_malformed_event_data_is_skipped(client: AsyncClient, session: AsyncSession) -> None:
    filed = await file_case(client, await citizen(client, "corr2"), content=TEXT + "。")
    await _reclassify(session, filed["id"], {"to_item_code": 5})
    await _reclassify(session, filed["id"], {"unrelated": "x"})
    assert all(text != TEXT + "。" for text, _ in await repository.corrections(session))


async def test_a_reclassification_improves_the_next_suggestion_end_to_end(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    text_model: learned.TextModel,
    tmp_path: Path,
) -> None:
    """File a case, reclassify it, ``ydt taxonomy retrain``: the API's next
    suggestion for that text puts the corrected item first."""
    snap = await service.snapshot(session)
    shutil.copy(
        learned.model_path(make_settings().model_dir, snap.model_fp),
        learned.model_path(tmp_path, snap.model_fp),
    )
    app.state.settings = app.state.settings.model_copy(update={"model_dir": tmp_path})

    async def ranked() -> list[str]:
        resp = await client.post("/api/v1/taxonomy/suggest", json={"text": ODD_TEXT})
        assert resp.status_code == 200
        return [s["item"]["code"] for s in resp.json()["suggestions"]]

    assert TARGET not in await ranked()
    filed = await file_case(client, await citizen(client, "corr3"), content=ODD_TEXT)
    await _reclassify(session, filed["id"], {"from_item_code": "0101", "to_item_code": TARGET})
    report = await retrain(session, tmp_path)
    print("\n" + report)
    assert "after (1 corrections" in report
    assert report.rstrip().endswith("corrections n=1    top-1 100.0%  top-3 100.0%")
    assert (await ranked())[0] == TARGET
