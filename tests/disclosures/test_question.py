"""'Ask about this line': a resident's question on a disclosure row is filed and
routed like any complaint, with the item pre-selected and the line in the case file."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.disclosures.helpers import OTHER_VILLAGE, PUBLIC, draft, finance, people, published
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, case, file_case

pytestmark = pytest.mark.usefixtures("seeded")

QUESTION = "这笔村道维修材料款八千多元，实际只拉了两车石子，请核实。"


async def test_a_question_on_a_row_is_routed_like_any_complaint(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await published(client, p, finance())
    shown = (await client.get(f"{PUBLIC}/{d['id']}", headers=p.resident)).json()
    asked = await file_case(
        client,
        p.resident,
        item_code=None,
        region_code=None,
        content=QUESTION,
        disclosure_id=d["id"],
        disclosure_row=2,
    )
    plain = await file_case(client, p.resident, item_code=shown["question_item"]["code"])
    # Same village, same item: the same unit and the same deadline rules.
    assert asked["unit"]["code"] == plain["unit"]["code"] == TOWN_UNIT
    assert asked["due_at"] == plain["due_at"]
    mine = (await client.get(f"/api/v1/complaints/{asked['id']}", headers=p.resident)).json()
    assert mine["item"]["code"] == "0103"
    assert mine["disclosure"]["row"]["subject"] == "村道维修材料款"
    cf = await case(client, p.supervisor, asked["id"])
    assert cf["disclosure"] == {
        "id": d["id"],
        "version": 1,
        "title": d["title"],
        "category": "finance",
        "period": "2026-10",
        "status": "published",
        "row_number": 2,
        "row": mine["disclosure"]["row"],
    }
    filed = next(e for e in cf["events"] if e["kind"] == "filed")
    assert filed["data"]["disclosure_id"] == d["id"] and filed["data"]["disclosure_row"] == 2
    # The resident may still choose another item.
    chosen = await file_case(
        client, p.resident, item_code="0102", content=QUESTION, disclosure_id=d["id"]
    )
    assert (await case(client, p.supervisor, chosen["id"]))["item"]["code"] == "0102"


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"disclosure_row": 9}, 400),  # only 3 rows
        ({"region_code": OTHER_VILLAGE}, 400),  # not that disclosure's village
        ({"disclosure_id": 999999}, 404),
        ({"disclosure_id": None, "disclosure_row": 1}, 422),
        ({"disclosure_row": 0}, 422),
    ],
)
async def test_bad_questions_are_refused_and_nothing_is_filed(
    client: AsyncClient, connection: AsyncConnection, extra: dict[str, object], status: int
) -> None:
    p = await people(client, connection)
    d = await published(client, p, finance())
    body = {
        "content": QUESTION,
        "anonymous": True,
        "disclosure_id": d["id"],
        "disclosure_row": 1,
        **extra,
    }
    r = await client.post("/api/v1/complaints", headers=p.resident, json=body)
    assert r.status_code == status, r.text
    assert (await client.get("/api/v1/complaints/mine", headers=p.resident)).json()["items"] == []


async def test_no_questions_on_a_draft(client: AsyncClient, connection: AsyncConnection) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    r = await client.post(
        "/api/v1/complaints",
        headers=p.resident,
        json={
            "content": QUESTION,
            "anonymous": True,
            "disclosure_id": d["id"],
            "region_code": VILLAGE,
        },
    )
    assert r.status_code == 404
