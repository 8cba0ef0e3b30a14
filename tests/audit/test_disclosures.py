"""Disclosure series get the same: replay of each version, anchored heads."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import Disclosure, DisclosureEvent
from tests.audit.helpers import about, audit, make_checkpoint
from tests.disclosures.helpers import STAFF, People, finance, people, published, subsidy

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
async def p(client: AsyncClient, connection: AsyncConnection) -> People:
    return await people(client, connection)


async def corrected(client: AsyncClient, p: People) -> tuple[dict[str, object], int]:
    """A published finance disclosure, corrected and the correction published."""
    first = await published(client, p, finance())
    r = await client.post(
        f"{STAFF}/{first['id']}/correct",
        headers=p.clerk,
        json={"reason": "标题有误", "title": "2026年10月村级财务收支公开（更正）"},
    )
    assert r.status_code in (200, 201), r.text
    fix = r.json()
    r = await client.post(
        f"{STAFF}/{fix['id']}/publish",
        headers=p.committee_b,
        json={"expected_version": fix["lock_version"], "note": "已核对"},
    )
    assert r.status_code == 200, r.text
    return fix, int(first["id"])


async def test_corrections_and_withdrawals_replay_clean(
    client: AsyncClient, p: People, session: AsyncSession
) -> None:
    _, first = await corrected(client, p)
    gone = await published(client, p, subsidy())
    r = await client.post(
        f"{STAFF}/{gone['id']}/withdraw",
        headers=p.clerk,
        json={"expected_version": gone["lock_version"], "reason": "名单需复核"},
    )
    assert r.status_code == 200, r.text
    await make_checkpoint(session)
    report = await audit(session)
    for sid in (first, gone["id"]):
        assert about(report, f"disclosure:{sid}") == [], [f.render() for f in report.findings]
    assert report.findings == [], [f.render() for f in report.findings]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("title", "另一个标题", "content.title"),
        ("closing_fen", 1, "content.closing_fen"),
        ("rows", [], "content.rows"),
        ("status", "withdrawn", "status"),
    ],
)
async def test_an_edited_disclosure_is_named_by_its_field(
    client: AsyncClient, p: People, session: AsyncSession, field: str, value: object, named: str
) -> None:
    fix, first = await corrected(client, p)
    await session.execute(
        update(Disclosure).where(Disclosure.id == fix["id"]).values({field: value})
    )
    (found,) = about(await audit(session), f"disclosure:{first}")
    assert found.part == "row" and f"disclosure {fix['id']} field {named!r}" in found.reason


async def test_deleted_newest_event_and_dropped_series_are_named(
    client: AsyncClient, p: People, session: AsyncSession
) -> None:
    _, first = await corrected(client, p)
    lone = await published(client, p, subsidy())
    await make_checkpoint(session)
    newest = (
        await session.execute(
            select(func.max(DisclosureEvent.seq)).where(DisclosureEvent.series_id == first)
        )
    ).scalar_one()
    await session.execute(
        delete(DisclosureEvent).where(
            DisclosureEvent.series_id == first, DisclosureEvent.seq == newest
        )
    )
    found = about(await audit(session), f"disclosure:{first}")
    assert any(f.seq == newest and "deleted" in f.reason for f in found), found
    await session.execute(delete(DisclosureEvent).where(DisclosureEvent.series_id == lone["id"]))
    await session.execute(delete(Disclosure).where(Disclosure.id == lone["id"]))
    (dropped,) = about(await audit(session), f"disclosure:{lone['id']}")
    assert "series dropped" in dropped.reason


async def test_a_version_slipped_in_without_events_is_named(
    client: AsyncClient, p: People, session: AsyncSession
) -> None:
    d = await published(client, p, subsidy())
    row = (await session.execute(select(Disclosure).where(Disclosure.id == d["id"]))).scalar_one()
    values = {c.name: getattr(row, c.key) for c in Disclosure.__table__.c if c.name != "id"}
    await session.execute(insert(Disclosure).values({**values, "version": 2}))
    slipped = (
        await session.execute(
            select(Disclosure.id).where(
                Disclosure.series_id == row.series_id, Disclosure.version == 2
            )
        )
    ).scalar_one()
    found = about(await audit(session), f"disclosure:{d['id']}")
    assert [f.reason for f in found] == [f"disclosure {slipped} was not created by an event"]
