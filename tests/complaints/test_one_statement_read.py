"""The resident's case read in one SELECT answers byte for byte what the
query-per-part ORM read answered, for every kind of case and timeline."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from httpx import AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints import repository, service
from app.models import SupervisionUnit
from app.models.enums import StaffRole
from app.routing import refcache
from tests import mediafiles
from tests.complaints.test_filing import login, payload, upload
from tests.factories import login as staff_login
from tests.factories import make_staff
from tests.workflow.helpers import TOWN_UNIT, act, case

pytestmark = pytest.mark.usefixtures("seeded")


async def orm_body(app: FastAPI, connection: AsyncConnection, cid: str, *, media: bool) -> bytes:
    """What the ORM path (the read before this change) renders for the case."""
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        row = await repository.summary(s, cid)
        assert row is not None
        detail = await service._detail(
            s,
            row,
            app.state.media_store,
            app.state.settings,
            now=app.state.clock.now(),
            with_media=media,
        )
    return bytes(JSONResponse(content=detail.model_dump(mode="json")).body)


class Statements:
    """Counts the statements the test connection runs (one SELECT per read)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.sql: list[str] = []
        self._engine = connection.sync_connection
        assert self._engine is not None
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.sql.append(str(args[2]))

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


async def test_detail_and_track_match_the_orm_read_byte_for_byte(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection
) -> None:
    h = await login(client, "onestatement")
    photo = await upload(client, h, mediafiles.jpeg_with_gps(), "image")

    async def filed(**kw: Any) -> dict[str, Any]:
        resp = await client.post("/api/v1/complaints", headers=h, json=payload(**kw))
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    anonymous = await filed(anonymous=True, contact_name=None, contact_phone=None)
    cases = [
        (await filed(media_ids=[photo]))["id"],
        anonymous["id"],
        (await filed(accused_level="village"))["id"],
    ]
    # A staff reply with a public text, an internal note, and a resolution.
    await make_staff(connection, "os.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    s = await staff_login(client, "os.zhang")
    v = (await case(client, s, cases[0]))["version"]
    for action, body in (
        ("accept", {}),
        ("reply", {"note": "内部：已约谈组长", "public_reply": "已督促退还安装费"}),
        ("resolve", {"note": "已办结"}),
    ):
        resp = await act(client, s, cases[0], action, v, **body)
        assert resp.status_code == 200, resp.text
        v = resp.json()["version"]

    for cid in cases:
        resp = await client.get(f"/api/v1/complaints/{cid}", headers=h)
        assert resp.status_code == 200, resp.text
        assert resp.content == await orm_body(app, connection, cid, media=True)
    detail = (await client.get(f"/api/v1/complaints/{cases[0]}", headers=h)).json()
    assert [t["kind"] for t in detail["timeline"]] == ["filed", "accepted", "replied", "resolved"]
    assert detail["timeline"][2]["note"] == "已督促退还安装费"  # never the internal note
    assert len(detail["media"]) == 1

    tracked = await client.get(
        f"/api/v1/track/{anonymous['tracking_no']}",
        params={"query_code": anonymous["query_code"]},
    )
    assert tracked.status_code == 200, tracked.text
    assert tracked.content == await orm_body(app, connection, cases[1], media=False)


async def test_a_read_is_one_select_and_other_residents_get_404(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    owner, other = await login(client, "os.owner"), await login(client, "os.other")
    cid = (await client.post("/api/v1/complaints", headers=owner, json=payload())).json()["id"]
    # The first read after a filing reloads the reference cache (the filing
    # pinned the taxonomy version, which moves the cache's token).
    assert (await client.get(f"/api/v1/complaints/{cid}", headers=owner)).status_code == 200
    seen = Statements(connection)
    try:
        resp = await client.get(f"/api/v1/complaints/{cid}", headers=owner)
        assert resp.status_code == 200
        # The savepoint framing is the test's own (a per-test transaction); the
        # tests check the reference cache's token on every use
        # (reference_cache_seconds=0), a deployment once a second.
        framing = ("SAVEPOINT", "RELEASE", "ROLLBACK TO SAVEPOINT")
        reads = [q for q in seen.sql if not q.lstrip().upper().startswith(framing)]
        token_checks = [q for q in reads if "FROM reference_version" in q]
        reads = [q for q in reads if q not in token_checks]
        assert len(token_checks) <= 1, token_checks
        assert len(reads) == 1 and reads[0].lstrip().upper().startswith("SELECT"), reads
        assert " JOIN " not in reads[0].upper(), reads  # names from the reference cache
    finally:
        seen.close()
    assert (await client.get(f"/api/v1/complaints/{cid}", headers=other)).status_code == 404
    assert (await client.get(f"/api/v1/complaints/{'0' * 32}", headers=owner)).status_code == 404


async def test_a_signed_out_token_reading_a_case_gets_401_not_404(client: AsyncClient) -> None:
    h = await login(client, "os.signout")
    cid = (await client.post("/api/v1/complaints", headers=h, json=payload())).json()["id"]
    out = await client.post("/api/v1/auth/logout", headers=h)
    assert out.status_code in (200, 204), out.text
    resp = await client.get(f"/api/v1/complaints/{cid}", headers=h)
    assert resp.status_code == 401, resp.text


async def test_names_come_from_the_reference_cache_and_a_rename_shows(
    client: AsyncClient, session: AsyncSession, connection: AsyncConnection
) -> None:
    """The item, village and unit names are the reference cache's: a renamed
    unit shows at the cache's next token check (every use in the tests)."""
    h = await login(client, "os.rename")
    filed = (await client.post("/api/v1/complaints", headers=h, json=payload())).json()
    before = (await client.get(f"/api/v1/complaints/{filed['id']}", headers=h)).json()
    assert before["unit_name"] == filed["unit"]["name"]
    assert before["item"]["name"] == filed["item"]["name"]
    assert before["region_name"] and before["region_name"] in filed["region_name"]
    unit = await session.get(SupervisionUnit, filed["unit"]["id"])
    assert unit is not None
    unit.name = "凤北街道纪工委（更名）"
    await session.flush()  # the trigger moves the reference token
    after = (await client.get(f"/api/v1/complaints/{filed['id']}", headers=h)).json()
    assert after["unit_name"] == "凤北街道纪工委（更名）"
    assert {k: v for k, v in after.items() if k != "unit_name"} == {
        k: v for k, v in before.items() if k != "unit_name"
    }


async def test_names_the_cache_lacks_are_read_from_their_tables(
    app: FastAPI, client: AsyncClient, session: AsyncSession, connection: AsyncConnection
) -> None:
    """A process whose cache has not seen an item, village or unit yet (a
    case filed through another process just after a change) reads the names
    from their tables: the same answer, one more SELECT."""
    h = await login(client, "os.fallback")
    filed = (await client.post("/api/v1/complaints", headers=h, json=payload())).json()
    expected = (await client.get(f"/api/v1/complaints/{filed['id']}", headers=h)).content
    row = await repository.summary(session, filed["id"])
    assert row is not None
    ref = await refcache.get(session, app.state.settings)
    for names in (ref.item_names, ref.units_by_id, ref.regions):
        key = {
            id(ref.item_names): row[0].item_id,
            id(ref.units_by_id): row[0].unit_id,
            id(ref.regions): row[0].region_code,
        }[id(names)]
        kept = names.pop(key)  # type: ignore[attr-defined]
        seen = Statements(connection)
        try:
            resp = await client.get(f"/api/v1/complaints/{filed['id']}", headers=h)
        finally:
            seen.close()
            names[key] = kept  # type: ignore[index]
        assert resp.status_code == 200 and resp.content == expected
        tables = ("FROM items", "FROM regions", "FROM supervision_units")
        assert any(all(t in q for t in tables) for q in seen.sql), seen.sql  # the names read


async def test_a_case_whose_names_are_gone_is_not_found(
    session: AsyncSession, client: AsyncClient
) -> None:
    """The joins this replaced found no row for such a case: still a 404."""
    assert await repository.names(session, -1, "000000000000", -1) is None
