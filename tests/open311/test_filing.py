"""Writes and errors, as GeoReport v2 says: a form-encoded POST with an api key
files a routed case through the one filing service; every refusal is a 400,
403 or 404 in the spec's error shape, in the format asked for."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import Complaint, ComplaintEvent, IntegratorKey, Open311Token
from tests.open311.helpers import BASE, PUBLIC_TEXT, admin, filed, form, issue_key, post
from tests.workflow.helpers import TOWN_UNIT, VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")


async def _count(connection: AsyncConnection) -> int:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        return int((await s.execute(select(func.count()).select_from(Complaint))).scalar_one())


class TestFiling:
    async def test_form_post_files_a_routed_case_with_the_integrator_as_actor(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        h = await admin(client, connection)
        key = await issue_key(client, h)
        answer = await filed(client, key["api_key"], **{"attribute[priority][]": "elderly"})
        assert set(answer) >= {"service_request_id", "token", "service_notice"}
        assert "凤北街道纪工委" in answer["service_notice"]
        async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
            case = await s.get(Complaint, answer["service_request_id"])
            assert case is not None
            assert case.channel.value == "open311"
            assert case.region_code == VILLAGE and case.content == PUBLIC_TEXT
            assert case.priority_flags == ["elderly"] and case.priority > 0
            assert case.tracking_no.startswith("DZ")
            events = (
                (
                    await s.execute(
                        select(ComplaintEvent)
                        .where(ComplaintEvent.complaint_id == case.id)
                        .order_by(ComplaintEvent.seq)
                    )
                )
                .scalars()
                .all()
            )
            assert [e.kind for e in events] == ["filed", "routed"]
            assert (events[0].actor_kind, events[0].actor_id) == ("integrator", key["id"])
            assert events[0].data["channel"] == "open311"
            token = await s.get(Open311Token, answer["token"])
            assert token is not None and token.complaint_id == case.id
            used = await s.get(IntegratorKey, key["id"])
            assert used is not None and used.last_used_at is not None
        # The staff queue of the unit routed to has it.
        staff = await client.get(
            f"/api/v1/staff/complaints/{answer['service_request_id']}", headers=h
        )
        assert staff.status_code == 200, staff.text
        assert staff.json()["unit"]["code"] == TOWN_UNIT
        # And GeoReport reads it back, by id and by token.
        one = await client.get(f"{BASE}/requests/{answer['service_request_id']}.json")
        assert one.status_code == 200 and one.json()[0]["status"] == "open"
        tok = await client.get(f"{BASE}/tokens/{answer['token']}.json")
        assert tok.json() == [
            {"token": answer["token"], "service_request_id": answer["service_request_id"]}
        ]

    async def test_xml_post_answers_xml(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        key = await issue_key(client, await admin(client, connection))
        resp = await post(client, form(key["api_key"]), "xml")
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/xml")
        root = ET.fromstring(resp.content)
        assert root.tag == "service_requests"
        assert len(root.findall("request/service_request_id")) == 1

    async def test_address_string_is_mapped_to_its_village(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        key = await issue_key(client, await admin(client, connection))
        answer = await filed(
            client, key["api_key"], address_id=None, address_string="凤北街道 双鱼湖社区 3 栋门口"
        )
        one = (await client.get(f"{BASE}/requests/{answer['service_request_id']}.json")).json()
        assert one[0]["address_id"] == VILLAGE

    async def test_a_bare_point_is_placed_by_the_nearest_public_case(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        key = await issue_key(client, await admin(client, connection))
        await filed(client, key["api_key"], lat="31.2101", long="107.5002")
        near = await filed(client, key["api_key"], address_id=None, lat="31.2110", long="107.5010")
        one = (await client.get(f"{BASE}/requests/{near['service_request_id']}.json")).json()
        assert one[0]["address_id"] == VILLAGE
        far = await post(client, form(key["api_key"], address_id=None, lat="25.0", long="100.0"))
        assert far.status_code == 400
        assert "address_string" in far.json()[0]["description"]

    async def test_no_name_and_no_phone_is_an_anonymous_filing_never_listed(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        key = await issue_key(client, await admin(client, connection))
        answer = await filed(client, key["api_key"], first_name=None, last_name=None, phone=None)
        assert "查询码" in answer["service_notice"]
        one = await client.get(f"{BASE}/requests/{answer['service_request_id']}.json")
        assert one.status_code == 404
        listed = (await client.get(f"{BASE}/requests.json")).json()
        assert answer["service_request_id"] not in {r["service_request_id"] for r in listed}


class TestRefusals:
    @pytest.mark.parametrize("fmt", ["json", "xml"])
    async def test_bad_missing_and_revoked_keys_are_403_and_write_nothing(
        self, client: AsyncClient, connection: AsyncConnection, fmt: str
    ) -> None:
        h = await admin(client, connection)
        key = await issue_key(client, h)
        before = await _count(connection)
        for bad in ("", "nope", "o311_" + "x" * 43, key["api_key"] + "x", "o311_\x00"):
            resp = await post(client, form(bad), fmt)
            assert resp.status_code == 403, (bad, resp.text)
        if fmt == "xml":
            root = ET.fromstring(resp.content)
            assert root.tag == "errors" and root.findtext("error/code") == "403"
        else:
            assert resp.json()[0]["code"] == 403
        revoked = await client.post(f"/api/v1/staff/integrators/{key['id']}/revoke", headers=h)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        resp = await post(client, form(key["api_key"]), fmt)
        assert resp.status_code == 403
        assert await _count(connection) == before

    async def test_unknown_or_accusation_service_is_refused(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        key = await issue_key(client, await admin(client, connection))
        for code in ("9999", "0102", "abc", None):
            resp = await post(client, form(key["api_key"], service_code=code))
            assert resp.status_code == 400, (code, resp.text)
            assert set(resp.json()[0]) == {"code", "description"}
        definition = await client.get(f"{BASE}/services/0102.json")
        assert definition.status_code == 404
        assert (await client.get(f"{BASE}/services/9999.xml")).status_code == 404

    @pytest.mark.parametrize(
        "change",
        [
            {"address_id": None},  # no location at all
            {"address_id": "", "address_string": "", "lat": "", "long": ""},  # empty is absent
            {"address_id": None, "lat": "31.2"},  # half a point
            {"address_id": "511702005000"},  # a township, not a village
            {"address_id": None, "address_string": "火星基地"},
            {"address_id": None, "lat": "NaN", "long": "107.5"},
            {"address_id": None, "lat": "1e999", "long": "107.5"},
            {"description": None},
            {"description": "短"},
            {"phone": "12345"},
            {"phone": None},  # a name without a phone
            {"attribute[priority][]": "galaxy"},
            {"attribute[colour]": "red"},
            {"service_code": "0105", "attribute[priority][]": "elderly"},  # no such attribute
            {"description": "路灯坏了\x00两个月"},
            {"description": "x" * 5000},
        ],
    )
    async def test_bad_fields_are_400_and_write_nothing(
        self, client: AsyncClient, connection: AsyncConnection, change: dict[str, str | None]
    ) -> None:
        key = await issue_key(client, await admin(client, connection))
        before = await _count(connection)
        resp = await post(client, form(key["api_key"], **change))
        assert resp.status_code == 400, resp.text
        [err] = resp.json()
        assert err["code"] == 400 and err["description"]
        assert await _count(connection) == before

    async def test_huge_and_raw_bodies_never_5xx(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        key = await issue_key(client, await admin(client, connection))
        url = f"{BASE}/requests.xml"
        huge = await client.post(url, data=form(key["api_key"], description="路" * 600_000))
        assert huge.status_code == 413
        assert ET.fromstring(huge.content).findtext("error/code") == "413"
        for raw in (
            b"\xff\xfe\x00=%00",
            b"api_key=%FF%FE&service_code=%00",
            b"=" * 5000,
            b"first_name=%ED%A0%80",
        ):
            resp = await client.post(
                url, content=raw, headers={"content-type": "application/x-www-form-urlencoded"}
            )
            assert 400 <= resp.status_code < 500, resp.text
            ET.fromstring(resp.content)  # still well-formed XML

    async def test_filings_past_the_keys_hourly_limit_are_429(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        key = await issue_key(client, await admin(client, connection), requests_per_hour=2)
        await filed(client, key["api_key"])
        await filed(client, key["api_key"])
        resp = await post(client, form(key["api_key"]))
        assert resp.status_code == 429
        assert resp.headers["retry-after"]
        assert resp.json()[0]["code"] == 429


class TestKeys:
    async def test_key_is_shown_once_and_stored_hashed(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        h = await admin(client, connection)
        key = await issue_key(client, h, contact="张工 0818-1234567")
        listed = await client.get("/api/v1/staff/integrators", headers=h)
        assert listed.status_code == 200
        [row] = [r for r in listed.json()["items"] if r["id"] == key["id"]]
        assert "api_key" not in row and key["api_key"].startswith(row["prefix"])
        async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
            stored = await s.get(IntegratorKey, key["id"])
            assert stored is not None
            assert key["api_key"] not in {stored.key_hash, stored.prefix, stored.name}
            assert len(stored.key_hash) == 64

    async def test_only_admins_manage_keys(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        from app.models.enums import StaffRole
        from tests.factories import login, make_staff

        await make_staff(connection, "o311.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
        h = await login(client, "o311.sup")
        resp = await client.post("/api/v1/staff/integrators", headers=h, json={"name": "某系统"})
        assert resp.status_code == 403
        assert (await client.get("/api/v1/staff/integrators", headers=h)).status_code == 403
        assert (
            await client.post("/api/v1/staff/integrators", json={"name": "x"})
        ).status_code == 401
        missing = await client.post(
            "/api/v1/staff/integrators/99999/revoke", headers=await admin(client, connection)
        )
        assert missing.status_code == 404
