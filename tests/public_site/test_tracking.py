"""查询办理进度 on the resident site: the same service and budget as /track."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.complaints.service import TRACKS_PER_MINUTE_PER_IP
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.public_site.helpers import HOME, OTHER_VILLAGE, form_token, post_track
from tests.workflow.helpers import TOWN_UNIT, act, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def anonymous_case(client: AsyncClient, connection: AsyncConnection) -> dict[str, Any]:
    """An anonymous filing, accepted and answered with an internal note and a public reply."""
    resident = await citizen(client, "site.track")
    filed = await file_case(client, resident, anonymous=True, contact_name=None, contact_phone=None)
    await make_staff(connection, "site.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    sup = await login(client, "site.sup")
    assert (await act(client, sup, filed["id"], "accept", 1)).status_code == 200
    r = await act(
        client,
        sup,
        filed["id"],
        "reply",
        2,
        note="内部：当事人是村主任亲戚",
        public_reply="已约谈村干部",
    )
    assert r.status_code == 200, r.text
    return filed


def without_echo(html: str, tracking_no: str) -> str:
    return html.replace(tracking_no, "")


async def test_the_right_code_shows_the_public_timeline_only(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    filed = await anonymous_case(client, connection)
    r = await post_track(client, f"{HOME}/track", filed["tracking_no"], filed["query_code"])
    assert r.status_code == 200, r.text
    assert filed["tracking_no"] in r.text and "已约谈村干部" in r.text
    assert "亲戚" not in r.text  # internal notes stay inside
    api = await client.get(
        f"/api/v1/track/{filed['tracking_no']}", params={"query_code": filed["query_code"]}
    )
    for entry in api.json()["timeline"]:  # the same timeline as the API's
        assert entry["label"] in r.text
    assert r.headers["cache-control"] == "no-store"
    # Typed on a phone: lower case, full-width, spaces.
    typed = filed["query_code"].lower().replace("", " ").strip()
    r = await post_track(client, "/track", f" {filed['tracking_no'].lower()} ", typed)
    assert r.status_code == 200 and "已约谈村干部" in r.text


async def test_wrong_code_unknown_number_and_another_village_answer_alike(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    filed = await anonymous_case(client, connection)
    no, code = filed["tracking_no"], filed["query_code"]
    unknown_no = no[:-6] + "999999"
    answers = [
        without_echo((await post_track(client, f"{HOME}/track", no, "WRONG1")).text, no),
        without_echo(
            (await post_track(client, f"{HOME}/track", unknown_no, code)).text, unknown_no
        ),
        without_echo((await post_track(client, f"/q/{OTHER_VILLAGE}/track", no, code)).text, no),
    ]
    statuses = {
        (await post_track(client, f"{HOME}/track", no, "WRONG1")).status_code,
        (await post_track(client, f"{HOME}/track", unknown_no, code)).status_code,
    }
    assert statuses == {404}
    assert answers[0] == answers[1]  # no oracle for which numbers exist
    assert "办理编号或查询码不正确" in answers[0]
    assert "办理编号或查询码不正确" in answers[2] and "已约谈" not in answers[2]
    # The village-free page (for letters and visits) shows it.
    r = await post_track(client, "/track", no, code)
    assert r.status_code == 200 and "已约谈村干部" in r.text


async def test_the_form_refuses_other_sites_and_stale_forms(client: AsyncClient) -> None:
    path = f"{HOME}/track"
    page = await client.get(path)
    data = {"form_token": form_token(page.text), "tracking_no": "DZ1", "query_code": "ABCD"}
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        r = await client.post(path, data=data, headers=headers)
        assert r.status_code == 403 and "本网站" in r.text
    for token in ("", "1.abc", "x" * 500, form_token((await client.get("/track")).text)):
        r = await client.post(path, data=data | {"form_token": token})
        assert r.status_code == 400 and "页面已过期" in r.text
    r = await client.post(path, data={"tracking_no": "DZ1"})
    assert r.status_code == 400


async def test_bad_fields_are_answered_not_crashed(client: AsyncClient) -> None:
    for no, code in (
        ("DZ\x00\x01", "ABCD"),
        ("DZ" * 5000, "ABCD"),
        ("DZ20261124-000001", "\u202e" * 3),
        ("", ""),
        ("💥💥💥💥💥", "NaN"),
    ):
        r = await post_track(client, f"{HOME}/track", no, code)
        assert r.status_code == 404, (no[:10], r.status_code)
        assert "办理编号或查询码不正确" in r.text


async def test_the_page_and_the_api_share_one_budget(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    for _ in range(TRACKS_PER_MINUTE_PER_IP):
        r = await client.get("/api/v1/track/DZ20261124-000001", params={"query_code": "ABCD"})
        assert r.status_code == 404
    r = await post_track(client, f"{HOME}/track", "DZ20261124-000001", "ABCD")
    assert r.status_code == 429 and "频繁" in r.text
    assert "retry-after" in r.headers


async def test_the_receipt_link_fills_in_the_number_and_nothing_else(client: AsyncClient) -> None:
    """A receipt's QR code opens /track?no=…: the number is filled in, the code
    is typed by the resident; a hostile ``no`` is dropped, never echoed raw."""
    r = await client.get("/track", params={"no": "dz20261124-000123"})
    assert r.status_code == 200
    assert 'value="DZ20261124-000123"' in r.text
    for bad in ('"><script>alert(1)</script>', "DZ\x00123", "9" * 500):
        r = await client.get("/track", params={"no": bad})
        assert r.status_code in (200, 422), r.text  # 422: the boundary's control-character rule
        assert "<script>alert" not in r.text and "9" * 500 not in r.text
