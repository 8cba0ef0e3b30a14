"""Migration 0012 seals the identities already in the database, with the keys
the service uses, and its downgrade puts them back (both databases)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import defer

from app.complaints import identity
from app.core.db import create_engine
from app.models import Citizen, Complaint, Media, Notification, Rating
from app.reference import service as reference_service
from tests import support
from tests.conftest import make_settings

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
# Complaint columns added by migrations after 0012 (0015: content security).
LATER_COMPLAINT_COLUMNS = [Complaint.moderation]
NAME, PHONE = "令狐冲", "13912345678"


@pytest.fixture(params=["sqlite", "postgresql"])
async def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database at revision 0011 with the reference data."""
    if request.param == "sqlite":
        url, name = f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}", None
    else:
        if not await support.postgres_available():
            if support.IN_CI:
                pytest.fail("PostgreSQL is mandatory under CI")
            pytest.skip("PostgreSQL not reachable")
        name, url = await support.create_pg_database()
    await asyncio.to_thread(support.alembic_upgrade, url, "0011")
    engine = create_engine(make_settings(database_url=url), url=url)
    async with engine.connect() as conn:
        s = AsyncSession(bind=conn)
        await reference_service.seed(s, now=NOW)
        await s.commit()
        await conn.commit()
    try:
        yield engine
    finally:
        await engine.dispose()
        if name:
            await support.drop_pg_database(name)


async def insert(conn: AsyncConnection, table: str, values: dict[str, Any]) -> None:
    """A row as the old code wrote it; columns it does not name get plain defaults."""

    def columns(sync: sa.Connection) -> list[dict[str, Any]]:
        return list(sa.inspect(sync).get_columns(table))

    row = dict(values)
    for c in await conn.run_sync(columns):
        if c["name"] in row or c["nullable"] or c["name"] == "id" or c.get("default"):
            continue
        t = c["type"]
        if isinstance(t, sa.Boolean):
            row[c["name"]] = False
        elif isinstance(t, sa.Integer):
            row[c["name"]] = 1
        elif isinstance(t, (sa.DateTime, sa.Date)):
            row[c["name"]] = NOW if isinstance(t, sa.DateTime) else NOW.date()
        elif isinstance(t, sa.JSON):
            row[c["name"]] = []
        else:
            row[c["name"]] = "x"
    cols = [sa.column(k, sa.JSON if isinstance(v, (list, dict)) else None) for k, v in row.items()]
    await conn.execute(sa.table(table, *cols).insert().values(**row))


async def legacy_rows(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        ref = (
            await conn.execute(
                sa.text(
                    "select i.id, i.code, i.department_code, r.code, u.id from items i, regions r,"
                    " supervision_units u where r.level = 'village' order by i.id, r.code, u.id"
                    " limit 1"
                )
            )
        ).one()
        item_id, item_code, dept, village, unit = ref
        await insert(conn, "citizens", {"id": 1, "openid": "openid-accuser", "unionid": "u-1",
                                        "created_at": NOW, "last_login_at": NOW})  # fmt: skip
        await insert(conn, "citizens", {"id": 2, "openid": "openid-plain", "created_at": NOW,
                                        "last_login_at": NOW})  # fmt: skip
        ids = {k: uuid.uuid4().hex for k in ("acc", "anon", "plain")}
        for key, citizen, accusation, anonymous, name, phone in (
            ("acc", 1, True, False, NAME, PHONE),
            ("anon", 1, False, True, None, None),
            ("plain", 2, False, False, "普通人", "13500000000"),
        ):
            await insert(
                conn,
                "complaints",
                {
                    "id": ids[key],
                    "tracking_no": f"DZ-{key}",
                    "channel": "online",
                    "citizen_id": citizen,
                    "item_id": item_id,
                    "item_code": item_code,
                    "region_code": village,
                    "township_code": village[:9] + "000",
                    "county_code": village[:6] + "000000",
                    "content": "旧数据",
                    "anonymous": anonymous,
                    "accusation": accusation,
                    "contact_name": name,
                    "contact_phone": phone,
                    "status": "resolved",
                    "unit_id": unit,
                    "department_code": dept,
                    "department_region_code": village[:6] + "000000",
                    "tier": "general",
                    "routing_trace": [],
                    "priority_flags": [],
                },
            )
            await insert(conn, "ratings", {"complaint_id": ids[key], "round": 0,
                                           "citizen_id": citizen, "score": 4,
                                           "satisfaction": "satisfied", "comment": "",
                                           "created_at": NOW})  # fmt: skip
            await insert(conn, "notifications", {"recipient_kind": "citizen",
                                                 "recipient_id": citizen,
                                                 "complaint_id": ids[key], "kind": "filed",
                                                 "title": "t", "body": "b",
                                                 "channel": "wechat_subscribe",
                                                 "status": "sent", "next_attempt_at": NOW,
                                                 "created_at": NOW})  # fmt: skip
            await insert(conn, "media", {"id": uuid.uuid4().hex, "owner_citizen_id": citizen,
                                         "kind": "image", "status": "attached",
                                         "content_type": "image/png",
                                         "storage_key": f"k/{key}", "max_size": 1,
                                         "attached_to": f"complaint:{ids[key]}",
                                         "created_at": NOW})  # fmt: skip
        await insert(conn, "idempotency_records", {"scope": "complaint", "owner": "citizen:1",
                                                   "key": "k", "request_hash": "h",
                                                   "response": {"id": ids["acc"]},
                                                   "created_at": NOW})  # fmt: skip
        await insert(conn, "shared_state", {"key": "file:citizen:1", "value": "",
                                            "expires_at": NOW})  # fmt: skip
        await conn.commit()
    return ids


async def test_upgrade_seals_existing_protected_cases_and_downgrade_restores_them(
    legacy: AsyncEngine,
) -> None:
    ids = await legacy_rows(legacy)
    url = legacy.url.render_as_string(hide_password=False)
    # To head, not just 0012: the ORM models read below map every later column
    # too (historical cases, 0014); later revisions leave identities alone.
    await asyncio.to_thread(support.alembic_upgrade, url, "head")
    async with legacy.connect() as conn:
        s = AsyncSession(bind=conn)
        # Columns later migrations add are not there at 0012: leave them unloaded.
        at_0012 = [defer(col) for col in LATER_COMPLAINT_COLUMNS]
        acc = await s.get(Complaint, ids["acc"], options=at_0012)
        anon = await s.get(Complaint, ids["anon"], options=at_0012)
        plain = await s.get(Complaint, ids["plain"], options=at_0012)
        assert acc is not None and anon is not None and plain is not None
        for c in (acc, anon):
            assert (c.citizen_id, c.contact_name, c.contact_phone) == (None, None, None)
            assert identity.owned_by(c, 1) and not identity.owned_by(c, 2)
        assert identity.of(acc) == identity.Identity(1, "openid-accuser", NAME, PHONE, None)
        assert acc.phone_index == identity.phone_index(PHONE)
        assert plain.citizen_id == 2 and plain.contact_phone == "13500000000"
        assert plain.identity_sealed is None and plain.owner_index is None
        for c in (acc, anon, plain):
            assert c.identity_commitment == identity.commitment(c.id, identity.of(c))
        citizen = await s.get(Citizen, 1)
        assert citizen is not None and citizen.openid == "openid-accuser"
        assert citizen.openid_index == Citizen.index_openid("openid-accuser")
        assert citizen.unionid_index == Citizen.index_unionid("u-1")

        async def link(stmt: Any) -> Any:
            return (await s.execute(stmt)).scalar_one()

        links = {
            cid: (
                await link(sa.select(Rating.citizen_id).where(Rating.complaint_id == cid)),
                await link(
                    sa.select(Notification.recipient_id).where(Notification.complaint_id == cid)
                ),
                await link(
                    sa.select(Media.owner_citizen_id).where(Media.attached_to == f"complaint:{cid}")
                ),
            )
            for cid in ids.values()
        }
        assert links == {ids["acc"]: (None,) * 3, ids["anon"]: (None,) * 3, ids["plain"]: (2,) * 3}
        left = await conn.execute(sa.text("select count(*) from idempotency_records"))
        assert left.scalar_one() == 0
        await s.close()

    await asyncio.to_thread(support.alembic_downgrade, url, "0011")
    async with legacy.connect() as conn:
        rows = await conn.execute(
            sa.text("select id, citizen_id, contact_name, contact_phone from complaints")
        )
        back = {r[0]: tuple(r[1:]) for r in rows}
        assert back[ids["acc"]] == (1, NAME, PHONE) and back[ids["anon"]] == (1, None, None)
        openid = await conn.execute(sa.text("select openid from citizens where id = 1"))
        assert openid.scalar_one() == "openid-accuser"
        owners = await conn.execute(sa.text("select owner_citizen_id from media"))
        assert {r[0] for r in owners} == {1, 2}
