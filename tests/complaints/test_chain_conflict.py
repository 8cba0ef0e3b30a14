"""Two writers appending to one case's chain: the loser gets a 409-class error
(ChainConflict), whichever path appended, never an IntegrityError 500."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints import events
from app.core.chain import ChainConflict
from app.models import Complaint
from tests.workflow.helpers import citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def test_losing_the_race_for_a_seq_is_a_conflict(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    cid = (await file_case(client, await citizen(client, "chain.race")))["id"]
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        c = (await s.execute(select(Complaint).where(Complaint.id == cid))).scalar_one()
        last = await events.last_event(s, cid)
        assert last is not None
        now = datetime.now(UTC)
        # A writer that read the chain before another appended: same seq twice.
        first = events.build(c, last, kind="supplemented", public=True, actor_kind="citizen",
                             actor_id=None, at=now)  # fmt: skip
        stale = events.build(c, last, kind="supplemented", public=True, actor_kind="citizen",
                             actor_id=None, at=now)  # fmt: skip
        s.add(first)
        await s.flush()
        with pytest.raises(ChainConflict) as caught:
            await events.chain.add_entry(s, stale)
        assert caught.value.status_code == 409
        await s.rollback()
