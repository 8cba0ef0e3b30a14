"""Working cases through HTTP: lifecycle, scope, identity, sign-off, escalation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.clock import FixedClock
from app.models import Notification
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


@dataclass
class Team:
    zhang: dict[str, str]
    li: dict[str, str]
    li_id: int
    wang: dict[str, str]
    chen: dict[str, str]
    handler: dict[str, str]
    other_handler: dict[str, str]
    county: dict[str, str]
    agent: dict[str, str]
    resident: dict[str, str]
    case_id: str


@pytest.fixture
async def team(client: AsyncClient, connection: AsyncConnection) -> Team:
    await make_staff(connection, "zhang.xin", StaffRole.supervisor, unit_code=TOWN_UNIT)
    li = await make_staff(connection, "li.min", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "wang.qiang", StaffRole.leader, unit_code=TOWN_UNIT)
    await make_staff(connection, "chen.bo", StaffRole.leader, unit_code=TOWN_UNIT)
    await make_staff(connection, "tc.jw", StaffRole.supervisor, unit_code="JW-511702")
    await make_staff(connection, "agent.zhou", StaffRole.agent, unit_code=TOWN_UNIT)
    resident = await citizen(client, "resident")
    filed = await file_case(client, resident)
    zhang = await login(client, "zhang.xin")
    dept = (await case(client, zhang, filed["id"]))["department_code"]
    other = "D001" if dept != "D001" else "D002"
    await make_staff(
        connection, "h.dept", StaffRole.handler, department_code=dept, region_code="511702000000"
    )
    await make_staff(
        connection, "h.other", StaffRole.handler, department_code=other, region_code="511702000000"
    )
    team = Team(
        zhang=zhang,
        li=await login(client, "li.min"),
        li_id=li.id,
        wang=await login(client, "wang.qiang"),
        chen=await login(client, "chen.bo"),
        handler=await login(client, "h.dept"),
        other_handler=await login(client, "h.other"),
        county=await login(client, "tc.jw"),
        agent=await login(client, "agent.zhou"),
        resident=resident,
        case_id=filed["id"],
    )
    return team


def cid(team: Team) -> str:
    return team.case_id


async def test_full_lifecycle_to_sign_off(
    client: AsyncClient, team: Team, connection: AsyncConnection
) -> None:
    c = cid(team)
    r = await act(client, team.zhang, c, "accept", 1)
    assert r.status_code == 200 and r.json()["status"] == "accepted" and r.json()["version"] == 2
    r = await act(client, team.zhang, c, "assign", 2, cadre_id=team.li_id)
    assert r.json()["cadre_id"] == team.li_id
    r = await act(client, team.li, c, "transfer", 3, note="请区农业农村局核查")
    assert r.json()["status"] == "in_progress" and r.json()["handler_department_code"]
    r = await act(client, team.handler, c, "reply", 4, note="已调取该社区近三年账目，正在核对")
    assert r.status_code == 200
    r = await act(
        client, team.handler, c, "resolve", 5, note="已督促社区公开2024—2026年财务收支并张榜公示"
    )
    assert r.json()["status"] == "resolved" and r.json()["signatures_needed"] == [
        "complainant",
        "handler",
        "supervising_leader",
        "principal_leader",
    ]
    r = await act(client, team.handler, c, "sign", 6, slot="handler")
    r = await act(
        client, team.zhang, c, "sign", 7, slot="complainant", note="电话回访，群众表示满意"
    )
    r = await act(client, team.wang, c, "sign", 8, slot="supervising_leader")
    assert r.json()["status"] == "resolved"
    same = await act(client, team.wang, c, "sign", 9, slot="principal_leader")
    assert same.status_code == 409  # one person cannot sign both leader slots
    r = await act(client, team.chen, c, "sign", 9, slot="principal_leader")
    assert r.status_code == 200, r.text
    final = r.json()
    assert final["status"] == "closed" and final["signatures_needed"] == []
    kinds = [e["kind"] for e in final["events"]]
    assert kinds[-2:] == ["signed", "closed"]

    timeline = (await client.get(f"/api/v1/complaints/{c}", headers=team.resident)).json()[
        "timeline"
    ]
    public = [t["kind"] for t in timeline]
    assert public == [
        "filed",
        "accepted",
        "transferred",
        "replied",
        "resolved",
        "closed",
    ]  # no internal steps
    assert all("李" not in t["note"] for t in timeline)  # cadre names stay internal

    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        kinds_sent = [
            n.kind
            for n in (
                await s.execute(
                    select(Notification)
                    .where(Notification.complaint_id == c, Notification.recipient_kind == "citizen")
                    .order_by(Notification.id)
                )
            ).scalars()
        ]
    assert kinds_sent == ["filed", "accepted", "replied", "resolved", "closed"]


async def test_stale_version_is_409_and_changes_nothing(client: AsyncClient, team: Team) -> None:
    c = cid(team)
    assert (await act(client, team.zhang, c, "accept", 1)).status_code == 200
    stale = await act(client, team.li, c, "reject", 1, note="重复反映")
    assert stale.status_code == 409 and stale.json()["error"] in (
        "stale_version",
        "invalid_transition",
    )
    stale2 = await act(client, team.li, c, "reply", 1, note="答复")
    assert stale2.status_code == 409 and stale2.json()["error"] == "stale_version"
    after = await case(client, team.zhang, c)
    assert after["version"] == 2 and after["status"] == "accepted" and len(after["events"]) == 3


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("resolve", {"note": "x"}),
        ("sign", {"slot": "handler"}),
        ("reopen", {"note": "x"}),
        ("transfer", {}),
    ],
)
async def test_forbidden_transitions_from_submitted_are_409(
    client: AsyncClient, team: Team, action: str, body: dict[str, Any]
) -> None:
    resp = await act(client, team.zhang, cid(team), action, 1, **body)
    assert resp.status_code == 409 and resp.json()["error"] == "invalid_transition"
    assert (await case(client, team.zhang, cid(team)))["version"] == 1


@pytest.mark.parametrize(
    ("action", "body", "msg"),
    [
        ("reject", {}, "理由"),
        ("assign", {}, "承办干部"),
        ("assign", {"cadre_id": 999999}, "不是本单位"),
    ],
)
async def test_missing_or_bad_fields_are_400(
    client: AsyncClient, team: Team, action: str, body: dict[str, Any], msg: str
) -> None:
    if action == "assign":
        await act(client, team.zhang, cid(team), "accept", 1)
    version = 2 if action == "assign" else 1
    resp = await act(client, team.zhang, cid(team), action, version, **body)
    assert resp.status_code == 400 and msg in resp.json()["detail"]


async def test_unknown_action_and_bad_payload(client: AsyncClient, team: Team) -> None:
    assert (await act(client, team.zhang, cid(team), "delete", 1)).status_code == 422
    bad = await client.post(
        f"/api/v1/staff/complaints/{cid(team)}/actions/accept", headers=team.zhang, json={}
    )
    assert bad.status_code == 422


async def test_scope_handlers_see_only_their_departments_transfers(
    client: AsyncClient, team: Team
) -> None:
    c = cid(team)
    assert (
        await client.get(f"/api/v1/staff/complaints/{c}", headers=team.handler)
    ).status_code == 404
    await act(client, team.zhang, c, "accept", 1)
    await act(client, team.zhang, c, "transfer", 2)
    assert (
        await client.get(f"/api/v1/staff/complaints/{c}", headers=team.handler)
    ).status_code == 200
    assert (
        await client.get(f"/api/v1/staff/complaints/{c}", headers=team.other_handler)
    ).status_code == 404
    mine = (await client.get("/api/v1/staff/complaints", headers=team.other_handler)).json()[
        "items"
    ]
    assert c not in [i["id"] for i in mine]
    # acting on an invisible case is indistinguishable from a missing one
    assert (await act(client, team.other_handler, c, "reply", 3, note="x")).status_code == 404


async def test_commission_sees_cases_below_but_does_not_work_them(
    client: AsyncClient, team: Team
) -> None:
    c = cid(team)
    assert (
        await client.get(f"/api/v1/staff/complaints/{c}", headers=team.county)
    ).status_code == 200
    assert (await act(client, team.county, c, "accept", 1)).status_code == 403
    assert (
        await client.get(f"/api/v1/staff/complaints/{c}", headers=team.agent)
    ).status_code == 404


async def test_department_never_sees_an_accusers_identity(
    client: AsyncClient, team: Team, connection: AsyncConnection
) -> None:
    accuser = await citizen(client, "accuser")
    acc = await file_case(
        client, accuser, item_code="0102", content="村主任把集体资金挪去给自己家修房子，好几万块"
    )
    supervisor_view = await case(client, team.zhang, acc["id"])
    assert supervisor_view["accusation"] and supervisor_view["reporter"]["visible"]
    assert supervisor_view["reporter"]["phone"] == "13900001111"
    await act(client, team.zhang, acc["id"], "accept", 1)
    await act(client, team.zhang, acc["id"], "transfer", 2)
    dept_code = (await case(client, team.zhang, acc["id"]))["handler_department_code"]
    # a handler of exactly the department the case went to
    await make_staff(
        connection,
        "h.acc",
        StaffRole.handler,
        department_code=dept_code,
        region_code="511702000000",
    )
    dept = await login(client, "h.acc")
    view = await case(client, dept, acc["id"])
    assert view["reporter"] == {"anonymous": False, "name": None, "phone": None, "visible": False}
    assert all(e["actor_id"] is None for e in view["events"] if e["actor_kind"] == "citizen")
    listing = (await client.get("/api/v1/staff/complaints", headers=dept)).json()["items"]
    assert next(i for i in listing if i["id"] == acc["id"])["reporter"]["visible"] is False


async def test_escalation_moves_the_case_one_level_up(client: AsyncClient, team: Team) -> None:
    c = cid(team)
    r = await act(client, team.zhang, c, "escalate", 1, note="涉及街道干部，需区纪委处理")
    assert r.status_code == 200 and r.json()["status"] == "escalated"
    assert r.json()["unit"]["code"] == "JW-511702"
    assert (
        await act(client, team.zhang, c, "accept", 2)
    ).status_code == 404  # out of their scope now
    assert (await act(client, team.county, c, "accept", 2)).status_code == 200


async def test_extension_requested_by_handler_and_approved(client: AsyncClient, team: Team) -> None:
    c = cid(team)
    await act(client, team.zhang, c, "accept", 1)
    await act(client, team.zhang, c, "transfer", 2)
    before = datetime.fromisoformat((await case(client, team.zhang, c))["due_at"])
    req = await act(client, team.handler, c, "extend", 3, days=5, note="需调取三年账目")
    assert req.status_code == 200 and datetime.fromisoformat(req.json()["due_at"]) == before
    ok = await act(client, team.zhang, c, "extend", 4, note="同意延期")
    after = datetime.fromisoformat(ok.json()["due_at"])
    assert after > before + timedelta(days=6)  # five working days later, weekend included
    assert ok.json()["events"][-1]["kind"] == "extended"


async def test_cards_follow_the_clock_in_the_queue(
    client: AsyncClient, team: Team, clock: FixedClock
) -> None:
    c = cid(team)
    due = datetime.fromisoformat((await case(client, team.zhang, c))["due_at"])

    async def card() -> str:
        items = (await client.get("/api/v1/staff/complaints", headers=team.zhang)).json()["items"]
        return str(next(i["card"] for i in items if i["id"] == c))

    assert await card() == "none"
    clock.set(due + timedelta(seconds=1))
    team.zhang = await login(client, "zhang.xin")
    assert await card() == "red"
    reds = (await client.get("/api/v1/staff/complaints?card=red", headers=team.zhang)).json()[
        "items"
    ]
    assert c in [i["id"] for i in reds]
    assert c not in [
        i["id"]
        for i in (
            await client.get("/api/v1/staff/complaints?card=yellow", headers=team.zhang)
        ).json()["items"]
    ]


async def test_offline_intake_counts_from_the_real_received_time(
    client: AsyncClient, team: Team, clock: FixedClock
) -> None:
    received = (clock.now() - timedelta(days=3)).isoformat()
    body = {
        "channel": "visit",
        "item_code": "0101",
        "region_code": "511702005001",
        "content": "王大爷来访反映村里账目不公开",
        "received_at": received,
        "reporter_name": "王大爷",
        "reporter_phone": "13800002222",
        "priority_flags": ["elderly"],
    }
    r = await client.post("/api/v1/staff/complaints", headers=team.zhang, json=body)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["channel"] == "visit" and filed["priority"] > 0
    assert datetime.fromisoformat(filed["received_at"]) == datetime.fromisoformat(received)
    assert (
        datetime.fromisoformat(filed["accept_due_at"]) < clock.now()
    )  # already late for acceptance
    agent_case = await client.post(
        "/api/v1/staff/complaints",
        headers=team.agent,
        json={**body, "channel": "agent", "received_at": None},
    )
    assert agent_case.status_code == 201
    agent_list = (await client.get("/api/v1/staff/complaints", headers=team.agent)).json()["items"]
    assert [i["id"] for i in agent_list] == [agent_case.json()["id"]]


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"received_at": "2099-01-01T00:00:00+08:00"}, 400),
        ({"received_at": "2020-01-01T00:00:00+08:00"}, 400),
        ({"channel": "online"}, 400),
        ({"reporter_phone": "123"}, 400),
        ({"region_code": "511702005000"}, 400),
        ({"channel": "fax"}, 422),
    ],
)
async def test_bad_offline_intake(
    client: AsyncClient, team: Team, changes: dict[str, Any], status: int
) -> None:
    body = {
        "channel": "phone",
        "item_code": "0101",
        "region_code": "511702005001",
        "content": "来电反映村务不公开问题",
        "reporter_name": "张三",
        "reporter_phone": "13800003333",
        **changes,
    }
    assert (
        await client.post("/api/v1/staff/complaints", headers=team.zhang, json=body)
    ).status_code == status


async def test_manual_supervision_order_and_notices(client: AsyncClient, team: Team) -> None:
    r = await client.post(
        "/api/v1/staff/supervision-orders",
        headers=team.county,
        json={"complaint_id": cid(team), "reason": "群众多次来电，请加快办理", "deadline_days": 3},
    )
    assert r.status_code == 201 and r.json()["kind"] == "manual"
    notices = (await client.get("/api/v1/staff/notices", headers=team.wang)).json()["items"]
    assert any(n["kind"] == "supervision_order" for n in notices)
    orders = (
        await client.get(
            f"/api/v1/staff/supervision-orders?complaint_id={cid(team)}", headers=team.zhang
        )
    ).json()["items"]
    assert len(orders) == 1
    assert (
        await client.post(
            "/api/v1/staff/supervision-orders",
            headers=team.handler,
            json={"complaint_id": cid(team), "reason": "x1"},
        )
    ).status_code == 403
