"""A small, fully known world of cases for checking every figure by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import TOWN_UNIT, act, case, file_case


@dataclass
class Staff:
    zhang: dict[str, str]
    wang: dict[str, str]
    chen: dict[str, str]
    county: dict[str, str]


async def staff(client: AsyncClient, connection: AsyncConnection) -> Staff:
    await make_staff(connection, "st.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "st.wang", StaffRole.leader, unit_code=TOWN_UNIT)
    await make_staff(connection, "st.chen", StaffRole.leader, unit_code=TOWN_UNIT)
    await make_staff(connection, "st.county", StaffRole.supervisor, unit_code="JW-511702")
    return await relogin(client)


async def relogin(client: AsyncClient) -> Staff:
    """Tokens expire when a test moves the clock: log the same people in again."""
    return Staff(*[await login(client, n) for n in ("st.zhang", "st.wang", "st.chen", "st.county")])


async def resolved_case(client: AsyncClient, s: Staff, r: dict[str, str]) -> str:
    """A resident's new case, accepted and resolved by the township unit."""
    cid = str((await file_case(client, r))["id"])
    v = (await case(client, s.zhang, cid))["version"]
    for action, body in (("accept", {}), ("resolve", {"note": "已整改"})):
        resp = await act(client, s.zhang, cid, action, v, **body)
        assert resp.status_code == 200, resp.text
        v = resp.json()["version"]
    return cid


async def close(client: AsyncClient, s: Staff, cid: str) -> dict[str, Any]:
    """accept → resolve → the four signatures, the way a unit closes a case."""
    v = (await case(client, s.zhang, cid))["version"]
    for who, action, body in (
        (s.zhang, "accept", {}),
        (s.zhang, "resolve", {"note": "已督促整改并公开"}),
        (s.zhang, "sign", {"slot": "handler"}),
        (s.zhang, "sign", {"slot": "complainant", "note": "电话确认"}),
        (s.wang, "sign", {"slot": "supervising_leader"}),
        (s.chen, "sign", {"slot": "principal_leader"}),
    ):
        r = await act(client, who, cid, action, v, **body)
        assert r.status_code == 200, r.text
        v = r.json()["version"]
    return r.json()


async def rate(
    client: AsyncClient, h: dict[str, str], cid: str, score: int, verdict: str
) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/complaints/{cid}/rating",
        headers=h,
        json={"score": score, "satisfaction": verdict},
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
