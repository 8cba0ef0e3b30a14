"""A stolen database alone must not reveal who accused whom (issue 13, item 2).

An accusation and an anonymous case are filed, worked, supplemented, rated
and notified the ordinary way, then every column of every table is read as
text: the filers' names, phones and openids appear nowhere, and no row that
names one of the cases (its id, tracking number, or an attached upload)
names the citizen. The same scan finds both on an ordinary real-name case,
so the scan itself can fail.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints import identity
from app.models import Complaint
from app.notifications.delivery import deliver
from tests import mediafiles
from tests.conftest import DEFAULT_NOW, make_settings
from tests.fake_wechat import FakeWeChat
from tests.identity.helpers import Resident, accuse, anonymous, citizen_links, dump, resident
from tests.stats.scenario import rate, staff
from tests.workflow.helpers import act, case, file_case

pytestmark = pytest.mark.usefixtures("seeded")

NAME, PHONE = "欧阳秀英", "13987654321"
ORDINARY_NAME, ORDINARY_PHONE = "司马长青", "13511112222"


async def photo(client: AsyncClient, r: Resident, key: str) -> str:
    resp = await client.post(
        "/api/v1/media",
        headers={**r.headers, "Idempotency-Key": key},
        data={"kind": "image"},
        files={"file": ("p.png", mediafiles.png())},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def worked(client: AsyncClient, s: object, cid: str) -> None:
    """Accepted and resolved by the township unit (reads the case file too)."""
    zhang = s.zhang  # type: ignore[attr-defined]
    v = (await case(client, zhang, cid))["version"]
    for action, body in (("accept", {}), ("resolve", {"note": "已整改"})):
        resp = await act(client, zhang, cid, action, v, **body)
        assert resp.status_code == 200, resp.text
        v = resp.json()["version"]


async def test_a_database_dump_reveals_no_accuser_and_no_anonymous_filer(
    client: AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    wechat: FakeWeChat,
    app: object,
) -> None:
    s = await staff(client, connection)
    accuser = await resident(client, "dump.accuser")
    hidden = await resident(client, "dump.anon")
    ordinary = await resident(client, "dump.ordinary")
    acc = await accuse(
        client,
        accuser,
        name=NAME,
        phone=PHONE,
        media_ids=[await photo(client, accuser, "up-acc")],
    )
    # a retry of the same filing (sealed answer replayed, nothing new)
    again = await client.post(
        "/api/v1/complaints",
        headers={**accuser.headers, "Idempotency-Key": "file-acc"},
        json={
            "item_code": "0102",
            "region_code": "511702005001",
            "content": "又一次：村主任把集体资金挪去给自己家修房子，证据确凿",
            "anonymous": False,
            "contact_name": NAME,
            "contact_phone": PHONE,
        },
    )
    assert again.status_code == 201, again.text
    anon = await anonymous(client, hidden, media_ids=[await photo(client, hidden, "up-anon")])
    plain = await file_case(
        client, ordinary.headers, contact_name=ORDINARY_NAME, contact_phone=ORDINARY_PHONE
    )
    protected = [acc, again.json(), anon]
    for filed, who in ((acc, accuser), (anon, hidden)):
        resp = await client.post(
            f"/api/v1/complaints/{filed['id']}/supplements",
            headers=who.headers,
            json={"content": "补充一张照片", "media_ids": [await photo(client, who, "up-2")]},
        )
        assert resp.status_code == 201, resp.text
    for filed in (*protected, plain):
        await worked(client, s, filed["id"])
    await rate(client, accuser.headers, acc["id"], 2, "basic")
    await rate(client, hidden.headers, anon["id"], 5, "satisfied")
    # the supervisor may read the accuser's identity (and the read is recorded)
    view = await case(client, s.zhang, acc["id"])
    assert view["reporter"]["name"] == NAME and view["reporter"]["phone"] == PHONE

    # The outbox delivers to the right WeChat users without a plain link.
    state = app.state  # type: ignore[attr-defined]
    templates = make_settings(
        wechat_templates={k: "tpl" for k in ("filed", "accepted", "resolved")}
    )
    stats = await deliver(
        state.sessionmaker,
        state.wechat,
        templates,
        worker_id="t",
        now=DEFAULT_NOW + timedelta(days=1),
    )
    assert stats.sent >= 6 and stats.skipped == 0
    sent_to = [b.get("touser") for _, path, b in wechat.requests if path.endswith("/send")]
    assert accuser.openid in sent_to and hidden.openid in sent_to

    rows = await dump(session)
    everything = "\n".join(r.text for r in rows)
    for secret in (NAME, PHONE, accuser.openid, hidden.openid, ordinary.openid):
        assert secret not in everything, secret
    for filed, who in ((acc, accuser), (again.json(), accuser), (anon, hidden)):
        needles = await _case_needles(session, filed["id"], filed["tracking_no"])
        assert citizen_links(rows, who.id, needles) == [], filed["tracking_no"]

    # The control: an ordinary real-name case is visible to the same scan.
    assert ORDINARY_PHONE in everything and ORDINARY_NAME in everything
    needles = await _case_needles(session, plain["id"], plain["tracking_no"])
    assert "complaints.citizen_id" in citizen_links(rows, ordinary.id, needles)

    # ... while the service itself still knows who filed what.
    row = await session.get(Complaint, acc["id"])
    assert row is not None and identity.of(row).phone == PHONE
    assert identity.of(row).citizen_id == accuser.id
    assert identity.of(row).openid is None  # it follows from the citizen (delivered above)


async def _case_needles(session: AsyncSession, cid: str, tracking_no: str) -> list[str]:
    from app.models import Media

    media = (
        await session.execute(select(Media.id).where(Media.attached_to == f"complaint:{cid}"))
    ).scalars()
    return [cid, tracking_no, *media]
