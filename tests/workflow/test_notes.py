"""Internal notes stay with staff; residents read only public replies.

Every action takes ``note`` (internal) and ``public_reply`` (what the resident
reads). Escalate, transfer, assign, extend and sign never publish their note,
on the resident's detail, on the anonymous tracker, or in the notices sent to
the resident. Events written before ``public_reply`` existed keep the meaning
they had: a reply's or result's note still shows, an escalation's never does.
"""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints import events
from app.models import Complaint, Notification
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

SECRET = "涉及街道分管领导亲属，提请区纪委监委办理"


async def supervisor(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "notes.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    return await login(client, "notes.sup")


async def resident_view(
    client: AsyncClient, resident: dict[str, str], filed: dict[str, Any]
) -> list[str]:
    """Everything a resident can read about the case, as text: the detail,
    the tracker (anonymous filings), and the notices sent to them."""
    texts = [(await client.get(f"/api/v1/complaints/{filed['id']}", headers=resident)).text]
    if filed.get("query_code"):
        tracked = await client.get(
            f"/api/v1/track/{filed['tracking_no']}?query_code={filed['query_code']}"
        )
        assert tracked.status_code == 200, tracked.text
        texts.append(tracked.text)
    return texts


async def citizen_notices(connection: AsyncConnection, cid: str) -> list[str]:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        rows = await s.execute(
            select(Notification.body).where(
                Notification.complaint_id == cid, Notification.recipient_kind == "citizen"
            )
        )
        return [str(b) for (b,) in rows]


@pytest.mark.parametrize(
    ("setup", "action", "body"),
    [
        ([], "escalate", {}),
        (["accept"], "transfer", {}),
        (["accept"], "assign", {"cadre_id": "me"}),
        (["accept"], "extend", {"days": 5}),
        (["accept", "resolve"], "sign", {"slot": "handler"}),
    ],
)
async def test_internal_notes_never_reach_the_resident(
    client: AsyncClient,
    connection: AsyncConnection,
    setup: list[str],
    action: str,
    body: dict[str, Any],
) -> None:
    sup = await supervisor(client, connection)
    resident = await citizen(client, "notes.anon")
    filed = await file_case(
        client, resident, anonymous=True, contact_name=None, contact_phone=None
    )
    cid, v = filed["id"], 1
    for step in setup:
        extra = {"public_reply": "已核实并整改"} if step == "resolve" else {}
        r = await act(client, sup, cid, step, v, **extra)
        assert r.status_code == 200, r.text
        v = r.json()["version"]
    if body.get("cadre_id") == "me":
        body = {"cadre_id": (await client.get("/api/v1/staff/me", headers=sup)).json()["id"]}
    r = await act(client, sup, cid, action, v, note=SECRET, **body)
    assert r.status_code == 200, r.text
    # Staff see the note, on the event it belongs to.
    staff_events = r.json()["events"]
    assert any(e["note"].endswith(SECRET) for e in staff_events)
    assert all(SECRET not in e["public_reply"] for e in staff_events)
    for text in await resident_view(client, resident, filed):
        assert SECRET not in text
    assert all(SECRET not in n for n in await citizen_notices(connection, cid))


async def test_the_public_reply_is_what_the_resident_reads(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    sup = await supervisor(client, connection)
    resident = await citizen(client, "notes.reply")
    filed = await file_case(client, resident)
    cid = filed["id"]
    await act(client, sup, cid, "accept", 1)
    r = await act(
        client, sup, cid, "reply", 2, note="群众情绪激动，注意方式", public_reply="已约谈村干部"
    )
    assert r.status_code == 200, r.text
    replied = r.json()["events"][-1]
    assert (replied["note"], replied["public_reply"]) == ("群众情绪激动，注意方式", "已约谈村干部")
    assert replied["data"]["public_reply"] == "已约谈村干部"  # inside the hash chain
    timeline = (await client.get(f"/api/v1/complaints/{cid}", headers=resident)).json()["timeline"]
    assert timeline[-1]["kind"] == "replied" and timeline[-1]["note"] == "已约谈村干部"
    assert "情绪" not in str(timeline)
    notices = await citizen_notices(connection, cid)
    assert any("已约谈村干部" in n for n in notices) and not any("情绪" in n for n in notices)
    # Resolve: the public reply is the result; the note stays inside.
    r = await act(
        client, sup, cid, "resolve", 3, note="内部：已报分管领导", public_reply="已公开账目"
    )
    assert r.status_code == 200 and r.json()["result"] == "已公开账目"
    timeline = (await client.get(f"/api/v1/complaints/{cid}", headers=resident)).json()["timeline"]
    assert timeline[-1]["note"] == "已公开账目" and "分管领导" not in str(timeline)


@pytest.mark.parametrize("action", ["reply", "reject"])
async def test_an_older_client_sending_only_note_still_informs_the_resident(
    client: AsyncClient, connection: AsyncConnection, action: str
) -> None:
    sup = await supervisor(client, connection)
    resident = await citizen(client, f"notes.old.{action}")
    cid = (await file_case(client, resident))["id"]
    v = 1
    if action == "reply":
        v = (await act(client, sup, cid, "accept", v)).json()["version"]
    r = await act(client, sup, cid, action, v, note="经核查，情况属实，已督促整改")
    assert r.status_code == 200, r.text
    assert r.json()["events"][-1]["public_reply"] == "经核查，情况属实，已督促整改"
    timeline = (await client.get(f"/api/v1/complaints/{cid}", headers=resident)).json()["timeline"]
    assert timeline[-1]["note"] == "经核查，情况属实，已督促整改"


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("reply", {"note": "", "public_reply": "  "}, "答复内容"),
        ("resolve", {}, "办理结果"),
        ("escalate", {"public_reply": "已上报"}, "上报须写明原因"),
    ],
)
async def test_required_texts_are_400(
    client: AsyncClient,
    connection: AsyncConnection,
    action: str,
    body: dict[str, Any],
    message: str,
) -> None:
    sup = await supervisor(client, connection)
    cid = (await file_case(client, await citizen(client, "notes.bad")))["id"]
    await act(client, sup, cid, "accept", 1)
    r = await act(client, sup, cid, action, 2, **body)
    assert r.status_code == 400 and message in r.json()["detail"]
    assert (await case(client, sup, cid))["version"] == 2


async def test_public_reply_too_long_or_with_control_characters_is_422(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    sup = await supervisor(client, connection)
    cid = (await file_case(client, await citizen(client, "notes.422")))["id"]
    await act(client, sup, cid, "accept", 1)
    for reply in ("长" * 4001, "答复\x00"):
        r = await act(client, sup, cid, "reply", 2, public_reply=reply)
        assert r.status_code == 422
    assert (await case(client, sup, cid))["version"] == 2


async def test_an_internal_step_with_a_public_reply_shows_only_the_reply(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    sup = await supervisor(client, connection)
    resident = await citizen(client, "notes.assign")
    cid = (await file_case(client, resident))["id"]
    me = (await client.get("/api/v1/staff/me", headers=sup)).json()["id"]
    await act(client, sup, cid, "accept", 1)
    r = await act(
        client, sup, cid, "assign", 2, cadre_id=me, note=SECRET, public_reply="已指定专人办理"
    )
    assert r.status_code == 200, r.text
    timeline = (await client.get(f"/api/v1/complaints/{cid}", headers=resident)).json()["timeline"]
    assert timeline[-1]["kind"] == "assigned" and timeline[-1]["note"] == "已指定专人办理"
    assert SECRET not in str(timeline)


async def test_events_written_before_public_reply_keep_their_meaning(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    """Legacy events carry no ``public_reply``: a reply's note was written for
    the resident and still shows; an escalation's, transfer's or extension's
    never does."""
    resident = await citizen(client, "notes.legacy")
    cid = (await file_case(client, resident))["id"]
    legacy = [
        ("accepted", "凤北街道纪工委已受理", False),
        ("escalated", f"已上报通川区纪委监委：{SECRET}", False),
        ("transferred", "请农业农村局核查，注意保护举报人", False),
        ("extended", "办理期限延长 5 个工作日，至 2026-12-08（内部：等待审计）", False),
        ("replied", "已调取近三年账目", True),
        ("resolved", "已督促公开财务收支", True),
    ]
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        c = await s.get(Complaint, cid)
        assert c is not None
        for kind, note, _ in legacy:
            await events.append(
                s, c, kind=kind, public=True, actor_kind="staff", actor_id=None,
                at=c.created_at, note=note, data={},
            )  # fmt: skip
        await s.commit()
    timeline = (await client.get(f"/api/v1/complaints/{cid}", headers=resident)).json()["timeline"]
    shown = {t["kind"]: t["note"] for t in timeline}
    for kind, note, public in legacy:
        assert shown[kind] == (note if public else ""), kind
