"""Every read of an accuser's identity by staff is an internal event of the
case, which the commission sees and the handling side does not (issue 13,
item 3); staff who may see identity find a protected case by phone, and that
search is recorded too."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints import events, identity
from app.core.chain import first_break
from app.models import ComplaintEvent, StaffUser
from app.models.enums import StaffRole
from tests.console.helpers import signed_in
from tests.factories import login, make_staff
from tests.identity.helpers import accuse, resident
from tests.workflow.helpers import TOWN_UNIT, act, case, file_case

pytestmark = pytest.mark.usefixtures("seeded")

NAME, PHONE = "诸葛云", "13655667788"


@dataclass
class World:
    zhang: dict[str, str]
    zhang_id: int
    county: dict[str, str]
    county_id: int
    handler: dict[str, str]
    other_town: dict[str, str]
    accused: str
    ordinary: str
    resident: dict[str, str]


@pytest.fixture
async def world(client: AsyncClient, connection: AsyncConnection) -> World:
    zhang = await make_staff(connection, "rd.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    county = await make_staff(connection, "rd.county", StaffRole.supervisor, unit_code="JW-511702")
    await make_staff(connection, "rd.other", StaffRole.supervisor, unit_code="XZ-511702001")
    r = await resident(client, "rd.accuser")
    acc = await accuse(client, r, name=NAME, phone=PHONE)
    plain = await file_case(client, r.headers, contact_name="普通人", contact_phone=PHONE)
    h = await login(client, "rd.zhang")
    for cid in (acc["id"], plain["id"]):
        v = (await case(client, h, cid))["version"]
        for action in ("accept", "transfer"):
            v = (await act(client, h, cid, action, v)).json()["version"]
    file = await case(client, h, acc["id"])
    await make_staff(
        connection,
        "rd.handler",
        StaffRole.handler,
        department_code=file["handler_department_code"],
        region_code=file["handler_region_code"],
    )
    return World(
        zhang=h,
        zhang_id=zhang.id,
        county=await login(client, "rd.county"),
        county_id=county.id,
        handler=await login(client, "rd.handler"),
        other_town=await login(client, "rd.other"),
        accused=acc["id"],
        ordinary=plain["id"],
        resident=r.headers,
    )


async def reads(session: AsyncSession, cid: str) -> list[ComplaintEvent]:
    stmt = (
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == cid, ComplaintEvent.kind == identity.VIEWED)
        .order_by(ComplaintEvent.seq)
    )
    return list((await session.execute(stmt)).scalars())


async def test_each_read_of_an_accusers_identity_is_recorded_for_the_commission(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    before = len(await reads(session, world.accused))  # the fixture's own case-file reads
    view = await case(client, world.zhang, world.accused)
    assert view["reporter"] == {"anonymous": False, "name": NAME, "phone": PHONE, "visible": True}
    found = await reads(session, world.accused)
    assert len(found) == before + 1
    last = found[-1]
    assert (last.actor_kind, last.actor_id, last.public) == ("staff", world.zhang_id, False)
    assert last.data == {"via": "case_file"}
    # the handling unit does not see who looked; the commission does
    assert all(e["kind"] != identity.VIEWED for e in view["events"])
    county = await case(client, world.county, world.accused)
    seen = [e for e in county["events"] if e["kind"] == identity.VIEWED]
    assert {e["actor_id"] for e in seen} == {world.zhang_id, world.county_id}
    assert seen[-1]["label"] == "查看反映人身份" and not seen[-1]["public"]
    # the resident's own timeline never shows them
    mine = (await client.get(f"/api/v1/complaints/{world.accused}", headers=world.resident)).json()
    assert all(e["kind"] != identity.VIEWED for e in mine["timeline"])
    # a handler sees no identity, so nothing is read and nothing recorded
    n = len(await reads(session, world.accused))
    hview = await case(client, world.handler, world.accused)
    assert hview["reporter"]["visible"] is False and len(await reads(session, world.accused)) == n
    # reading an ordinary complainant is the department's daily work: not recorded
    await case(client, world.zhang, world.ordinary)
    assert await reads(session, world.ordinary) == []
    # the records are part of the chain, which still verifies
    chain_ = (
        await session.execute(
            select(ComplaintEvent)
            .where(ComplaintEvent.complaint_id == world.accused)
            .order_by(ComplaintEvent.seq)
        )
    ).scalars()
    assert first_break(list(chain_), events.compute_hash) is None


async def test_lists_never_show_an_accuser(client: AsyncClient, world: World) -> None:
    items = (await client.get("/api/v1/staff/complaints", headers=world.zhang)).json()["items"]
    row = next(i for i in items if i["id"] == world.accused)
    assert row["reporter"]["visible"] is False and row["reporter"]["name"] is None
    plain = next(i for i in items if i["id"] == world.ordinary)
    assert plain["reporter"]["name"] == "普通人" and plain["reporter"]["phone"] == "136****7788"


async def test_search_by_phone_finds_only_what_the_role_may_see_and_is_recorded(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    async def search(h: dict[str, str], phone: str) -> set[str]:
        resp = await client.get("/api/v1/staff/complaints", headers=h, params={"phone": phone})
        assert resp.status_code == 200, resp.text
        return {i["id"] for i in resp.json()["items"]}

    before = len(await reads(session, world.accused))
    assert await search(world.zhang, PHONE) == {world.accused, world.ordinary}
    assert await search(world.zhang, "+86 136-5566-7788") == {world.accused, world.ordinary}
    found = await reads(session, world.accused)
    assert [e.data for e in found[before:]] == [{"via": "phone_search"}] * 2
    assert await reads(session, world.ordinary) == []
    assert await search(world.zhang, "13600000000") == set()
    # a handler finds the ordinary case it handles, never the accusation
    assert await search(world.handler, PHONE) == {world.ordinary}
    # another township's supervisor finds nothing outside its scope
    assert await search(world.other_town, PHONE) == set()
    assert len(await reads(session, world.accused)) == before + 2


async def test_a_ledger_filtered_by_phone_records_the_read_before_the_file(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    """The register filtered by a filer's phone identifies a protected case's
    filer just as the list does: the read is recorded (in a writer session of
    its own, app/workflow/reads.py) before the file is handed out."""
    before = len(await reads(session, world.accused))
    resp = await client.get(
        "/api/v1/staff/ledger.xlsx", headers=world.zhang, params={"phone": PHONE}
    )
    assert resp.status_code == 200 and resp.content[:2] == b"PK"
    found = await reads(session, world.accused)
    assert [e.data for e in found[before:]] == [{"via": "phone_search"}]
    assert await reads(session, world.ordinary) == []


@pytest.mark.parametrize("phone", ["abc", "1", "1" * 30, "138'; drop table x"])
async def test_search_by_a_malformed_phone_is_422(
    client: AsyncClient, world: World, phone: str
) -> None:
    resp = await client.get(
        "/api/v1/staff/complaints", headers=world.zhang, params={"phone": phone}
    )
    assert resp.status_code == 422


async def test_a_staff_member_without_the_case_in_scope_reads_nothing(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    n = len(await reads(session, world.accused))
    resp = await client.get(f"/api/v1/staff/complaints/{world.accused}", headers=world.other_town)
    assert resp.status_code == 404
    assert len(await reads(session, world.accused)) == n
    assert (await session.get(StaffUser, world.zhang_id)) is not None


async def test_a_receipt_reprint_of_an_accusation_is_a_recorded_read(
    client: AsyncClient, world: World, session: AsyncSession
) -> None:
    """The console's receipt reprint loads the case file, which shows its
    reader the accuser's identity: it records that read like the case page,
    so it must take a writer session (a read session refuses the record)."""
    await signed_in(client, "rd.zhang")
    before = len(await reads(session, world.accused))
    page = await client.get(f"/console/complaints/{world.accused}/receipt")
    assert page.status_code == 200, page.text[:300]
    assert "受理回执" in page.text
    found = await reads(session, world.accused)
    assert [e.data for e in found[before:]] == [{"via": "case_file"}]
    # Another township's supervisor gets the same 404 as for a missing case.
    client.cookies.clear()
    await signed_in(client, "rd.other")
    other = await client.get(f"/console/complaints/{world.accused}/receipt")
    missing = await client.get("/console/complaints/no-such-case/receipt")
    assert other.status_code == missing.status_code == 404
    assert len(await reads(session, world.accused)) == before + 1
