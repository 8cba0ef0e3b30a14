"""Reads, as GeoReport v2 says: bare JSON arrays and the spec's XML, the 90-day
window, the filters, and what is never shown (accusations, anonymous filings,
internal notes, identity)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import FixedClock
from app.models.enums import StaffRole
from tests.conftest import DEFAULT_NOW
from tests.factories import login, make_staff
from tests.open311.helpers import BASE, admin, filed, issue_key
from tests.workflow.helpers import TOWN_UNIT, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


def _xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)


class TestServices:
    async def test_services_are_items_without_accusations(self, client: AsyncClient) -> None:
        resp = await client.get(f"{BASE}/services.json")
        assert resp.status_code == 200
        services = resp.json()
        assert isinstance(services, list)
        by_code = {s["service_code"]: s for s in services}
        assert "0102" not in by_code  # 村干部侵占挪用集体资金: an accusation item
        first = by_code["0101"]
        assert set(first) == {
            "service_code",
            "service_name",
            "description",
            "metadata",
            "type",
            "keywords",
            "group",
        }
        assert first["metadata"] is True and first["type"] == "realtime"
        assert by_code["0105"]["metadata"] is False  # a consultation asks nothing more
        assert first["group"] and "," in first["keywords"]
        xml = await client.get(f"{BASE}/services.xml")
        assert xml.headers["content-type"].startswith("text/xml")
        root = _xml(xml.content)
        assert root.tag == "services"
        assert len(root.findall("service")) == len(services)
        assert root.find("service[service_code='0101']/metadata").text == "true"  # type: ignore[union-attr]

    async def test_definition_lists_attributes_with_values(self, client: AsyncClient) -> None:
        body = (await client.get(f"{BASE}/services/0101.json")).json()
        assert body["service_code"] == "0101"
        [attr] = body["attributes"]
        assert attr["code"] == "priority" and attr["datatype"] == "multivaluelist"
        assert {v["key"] for v in attr["values"]} == {"elderly", "disabled", "group", "emergency"}
        root = _xml((await client.get(f"{BASE}/services/0101.xml")).content)
        assert root.tag == "service_definition"
        assert len(root.findall("attributes/attribute/values/value")) == 4
        assert (await client.get(f"{BASE}/services/0105.json")).json()["attributes"] == []

    async def test_discovery_names_this_endpoint(self, client: AsyncClient) -> None:
        body = (await client.get(f"{BASE}/discovery.json")).json()
        [endpoint] = body["endpoints"]
        assert endpoint["url"].endswith("/open311/v2")
        assert endpoint["formats"] == ["text/xml", "application/json"]
        root = _xml((await client.get(f"{BASE}/discovery.xml")).content)
        assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
            "text/xml",
            "application/json",
        ]

    async def test_unknown_format_is_404_in_the_spec_shape(self, client: AsyncClient) -> None:
        resp = await client.get(f"{BASE}/services.yaml")
        assert resp.status_code == 404
        assert resp.json()[0]["code"] == 404


class TestPrivacy:
    async def test_accusations_anonymous_notes_and_identity_never_appear(
        self, client: AsyncClient, connection: AsyncConnection
    ) -> None:
        resident = await citizen(client, "o311-resident")
        public = await file_case(
            client,
            resident,
            content="我叫王小明，电话13812345678，村里财务三个季度没有公开，公示栏一直空着。",
            location={"lat": 31.21234, "lng": 107.50123, "address": "王家院子3号"},
        )
        accusation = await file_case(
            client, resident, item_code="0102", content="村主任把集体资金挪去给自己家修房子"
        )
        anonymous = await file_case(
            client, resident, anonymous=True, contact_name=None, contact_phone=None
        )
        await make_staff(connection, "o311.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
        zhang = await login(client, "o311.zhang")
        version = (await case(client, zhang, public["id"]))["version"]
        resp = await act(
            client,
            zhang,
            public["id"],
            "accept",
            version,
            note="内部：反映人是村会计的亲戚，注意保密",
            public_reply="已受理，将于三个工作日内核查公开情况。",
        )
        assert resp.status_code == 200, resp.text

        for fmt in ("json", "xml"):
            listed = await client.get(f"{BASE}/requests.{fmt}")
            assert listed.status_code == 200
            text = listed.text
            assert public["id"] in text
            for hidden in (accusation["id"], anonymous["id"], "村会计", "王小明", "13812345678"):
                assert hidden not in text, hidden
            assert "王家院子" not in text and "107.50123" not in text
            assert "李大姐" not in text and "13900001111" not in text
        [row] = (await client.get(f"{BASE}/requests/{public['id']}.json")).json()
        assert row["status_notes"] == "已受理，将于三个工作日内核查公开情况。"
        assert row["description"].startswith("我叫**")
        assert "****" in row["description"]
        assert (row["lat"], row["long"]) == (31.212, 107.501)
        assert row["agency_responsible"] == "凤北街道纪工委"
        for hidden in (accusation["id"], anonymous["id"]):
            resp = await client.get(f"{BASE}/requests/{hidden}.xml")
            assert resp.status_code == 404
            assert _xml(resp.content).findtext("error/code") == "404"
            by_id = await client.get(f"{BASE}/requests.json", params={"service_request_id": hidden})
            assert by_id.json() == []


class TestQueries:
    async def test_filters_window_and_status(
        self, client: AsyncClient, connection: AsyncConnection, clock: FixedClock
    ) -> None:
        key = (await issue_key(client, await admin(client, connection)))["api_key"]
        old = await filed(client, key)
        clock.set(DEFAULT_NOW + timedelta(days=100))
        a = await filed(client, key)
        b = await filed(client, key, service_code="0105")

        ids = lambda resp: [r["service_request_id"] for r in resp.json()]  # noqa: E731
        recent = await client.get(f"{BASE}/requests.json")
        assert sorted(ids(recent)) == sorted([a["service_request_id"], b["service_request_id"]])
        assert old["service_request_id"] not in ids(recent)  # outside the 90-day default
        then = (DEFAULT_NOW - timedelta(days=1)).isoformat()
        back = await client.get(f"{BASE}/requests.json", params={"start_date": then})
        assert ids(back) == [old["service_request_id"]]
        by_code = await client.get(f"{BASE}/requests.json", params={"service_code": "0105"})
        assert ids(by_code) == [b["service_request_id"]]
        listed = ",".join([old["service_request_id"], a["service_request_id"]])
        by_ids = await client.get(
            f"{BASE}/requests.json",
            params={"service_request_id": listed, "service_code": "0105"},  # ids win
        )
        assert sorted(ids(by_ids)) == sorted(listed.split(","))
        closed = await client.get(f"{BASE}/requests.json", params={"status": "closed"})
        assert closed.json() == []
        both = await client.get(f"{BASE}/requests.json", params={"status": "open,closed"})
        assert len(both.json()) == 2
        empty = await client.get(
            f"{BASE}/requests.json",
            params={"service_code": "", "status": "", "start_date": "", "end_date": ""},
        )
        assert ids(empty) == ids(recent)  # empty parameters are absent

    @pytest.mark.parametrize(
        "params",
        [
            {"start_date": "yesterday"},
            {"start_date": "2026-11-20T09:30:00"},  # no offset
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-01T00:00:00Z"},
            {"start_date": "2026-12-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"},
            {"start_date": "0001-01-01T00:00:00Z"},
            {"status": "pending"},
            {"service_code": "01;drop"},
            {"service_request_id": "../../etc"},
            {"service_request_id": ",".join(["a" * 32] * 101)},
            {"service_code": "a\x00b"},
        ],
    )
    async def test_bad_query_is_400_in_both_formats(
        self, client: AsyncClient, params: dict[str, str]
    ) -> None:
        resp = await client.get(f"{BASE}/requests.json", params=params)
        assert resp.status_code == 400, resp.text
        assert resp.json()[0]["code"] == 400
        xml = await client.get(f"{BASE}/requests.xml", params=params)
        assert xml.status_code == 400
        assert _xml(xml.content).findtext("error/code") == "400"

    async def test_unknown_request_and_token_are_404(self, client: AsyncClient) -> None:
        for url in (
            f"{BASE}/requests/{'0' * 32}.json",
            f"{BASE}/requests/DZ20261124-000001.json",
            f"{BASE}/tokens/{'0' * 32}.json",
            f"{BASE}/tokens/nope.xml",
        ):
            resp = await client.get(url)
            assert resp.status_code == 404, url


async def test_reads_past_the_per_address_limit_are_429(app: FastAPI, client: AsyncClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"open311_reads_per_minute": 2})
    for _ in range(2):
        assert (await client.get(f"{BASE}/services.json")).status_code == 200
    resp = await client.get(f"{BASE}/services.xml")
    assert resp.status_code == 429 and resp.headers["retry-after"]
    assert _xml(resp.content).findtext("error/code") == "429"
