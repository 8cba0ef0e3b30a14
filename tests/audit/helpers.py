"""A team that works cases, a checkpoint maker, and the tamperer's tools."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from httpx import AsyncClient
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit import checkpoint, verify
from app.audit.signing import load_signer, trusted_keys
from app.audit.verifier import AuditReport, Break
from app.complaints.events import compute_hash
from app.core.chain import GENESIS
from app.core.db import Base
from app.models import AuditCheckpoint, ComplaintEvent
from app.models.enums import StaffRole
from tests.conftest import DEFAULT_NOW, make_settings
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, act, case, citizen, file_case

SETTINGS = make_settings()
TRUSTED = trusted_keys(SETTINGS)


@dataclass
class Team:
    zhang: dict[str, str]  # supervisor
    li_id: int  # another supervisor, to assign to
    wang: dict[str, str]  # leader
    chen: dict[str, str]  # leader
    resident: dict[str, str]


async def team(client: AsyncClient, connection: AsyncConnection) -> Team:
    await make_staff(connection, "au.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    li = await make_staff(connection, "au.li", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "au.wang", StaffRole.leader, unit_code=TOWN_UNIT)
    await make_staff(connection, "au.chen", StaffRole.leader, unit_code=TOWN_UNIT)
    return Team(
        zhang=await login(client, "au.zhang"),
        li_id=li.id,
        wang=await login(client, "au.wang"),
        chen=await login(client, "au.chen"),
        resident=await citizen(client, "au.resident"),
    )


async def steps(
    client: AsyncClient, cid: str, *actions: tuple[dict[str, str], str, dict[str, Any]]
) -> None:
    v = (await case(client, actions[0][0], cid))["version"]
    for who, action, body in actions:
        r = await act(client, who, cid, action, v, **body)
        assert r.status_code == 200, (action, r.text)
        v = r.json()["version"]


async def worked_case(client: AsyncClient, t: Team, **filing: Any) -> dict[str, Any]:
    """Filed, accepted, assigned and resolved: five events, a row that changed."""
    filed = await file_case(client, t.resident, **filing)
    await steps(
        client,
        filed["id"],
        (t.zhang, "accept", {}),
        (t.zhang, "assign", {"cadre_id": t.li_id}),
        (t.zhang, "resolve", {"public_reply": "已督促村里公开账目"}),
    )
    return filed


async def make_checkpoint(session: AsyncSession, now: datetime = DEFAULT_NOW) -> AuditCheckpoint:
    made = await checkpoint.create(
        session, load_signer(SETTINGS), now=now, period=checkpoint.manual_key(now)
    )
    assert made is not None
    return made


async def audit(session: AsyncSession, **kw: Any) -> AuditReport:
    return await verify(session, trusted=TRUSTED, **kw)


def about(report: AuditReport, key: str) -> list[Break]:
    """The findings naming one case id, ``disclosure:<series>`` or ``checkpoint:<n>``."""
    return [f for f in report.findings if f.complaint_id == key]


async def chain(session: AsyncSession, cid: str) -> list[ComplaintEvent]:
    stmt = (
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == cid)
        .order_by(ComplaintEvent.seq)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def rechain(session: AsyncSession, events: list[ComplaintEvent]) -> None:
    """What an insider holding the chain key would do after editing an event:
    recompute every link so the chain verifies by itself again."""
    prev = GENESIS
    for e in events:
        e.prev_hash = prev
        e.hash = compute_hash(prev, e)
        prev = e.hash
    await session.flush()


async def drop_case(session: AsyncSession, cid: str) -> None:
    """Delete a case and everything that points at it, as a DBA could."""
    for table in reversed(Base.metadata.sorted_tables):
        for fk in table.foreign_keys:
            if fk.column.table.name == "complaints" and table.name != "complaint_events":
                await session.execute(delete(table).where(fk.parent == cid))
    await session.execute(delete(ComplaintEvent).where(ComplaintEvent.complaint_id == cid))
    await session.execute(delete(Base.metadata.tables["complaints"]).where(
        Base.metadata.tables["complaints"].c.id == cid
    ))  # fmt: skip


async def swap(session: AsyncSession, cid: str, a: int, b: int) -> None:
    """Reorder two events (their positions, not their hashes)."""
    for frm, to in ((a, -1), (b, a), (-1, b)):
        await session.execute(
            update(ComplaintEvent)
            .where(ComplaintEvent.complaint_id == cid, ComplaintEvent.seq == frm)
            .values(seq=to)
        )
