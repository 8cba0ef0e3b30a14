"""Sign-off is per handling round: after a reopening the same leaders sign the
new round, and within a round the two leader slots still need two people."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.stats.scenario import staff
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")


async def test_leaders_sign_again_after_a_reopening(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    cid = (await file_case(client, await citizen(client, "sign.rounds")))["id"]

    async def step(who: dict[str, str], action: str, status: int = 200, **kw: object) -> None:
        v = (await case(client, s.zhang, cid))["version"]
        r = await act(client, who, cid, action, v, **kw)
        assert r.status_code == status, r.text

    await step(s.zhang, "accept")
    await step(s.zhang, "resolve", note="已整改")
    await step(s.wang, "sign", slot="supervising_leader")
    await step(s.zhang, "reopen", note="群众反映整改不到位")
    await step(s.zhang, "resolve", note="再次整改并公开")
    # Round two: wang signs his slot again; he still cannot take both slots.
    await step(s.wang, "sign", slot="supervising_leader")
    await step(s.wang, "sign", 409, slot="principal_leader")
    await step(s.zhang, "sign", slot="handler")
    await step(s.zhang, "sign", slot="complainant", note="电话确认")
    await step(s.chen, "sign", slot="principal_leader")
    assert (await case(client, s.zhang, cid))["status"] == "closed"
