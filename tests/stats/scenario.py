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


@dataclass
class Team:
    """A township unit's supervisor and its two leaders (enough to close a case)."""

    supervisor: dict[str, str]
    leader: dict[str, str]
    principal: dict[str, str]


async def team(client: AsyncClient, connection: AsyncConnection, unit_code: str) -> Team:
    tag = unit_code.lower()
    await make_staff(connection, f"{tag}.sup", StaffRole.supervisor, unit_code=unit_code)
    await make_staff(connection, f"{tag}.lead", StaffRole.leader, unit_code=unit_code)
    await make_staff(connection, f"{tag}.head", StaffRole.leader, unit_code=unit_code)
    return Team(*[await login(client, f"{tag}.{n}") for n in ("sup", "lead", "head")])


async def handled_case(
    client: AsyncClient,
    t: Team,
    resident: dict[str, str],
    village: str,
    verdicts: tuple[str, ...] = ("satisfied",),
    *,
    stop_at: str = "closed",
) -> str:
    """A case filed in ``village`` and handled by its township unit: accepted, then
    (unless ``stop_at="accepted"``) resolved and rated with each verdict in turn,
    an unsatisfied one reopening it for another round, then signed off."""
    cid = str((await file_case(client, resident, region_code=village))["id"])
    v = (await case(client, t.supervisor, cid))["version"]
    resp = await act(client, t.supervisor, cid, "accept", v)
    assert resp.status_code == 200, resp.text
    if stop_at == "accepted":
        return cid
    for verdict in verdicts:
        v = (await case(client, t.supervisor, cid))["version"]
        resp = await act(client, t.supervisor, cid, "resolve", v, note="已督促整改并公开")
        assert resp.status_code == 200, resp.text
        await rate(client, resident, cid, 5 if verdict == "satisfied" else 1, verdict)
    if stop_at != "closed" or verdicts[-1] == "unsatisfied":
        return cid
    v = (await case(client, t.supervisor, cid))["version"]
    for who, slot in (
        (t.supervisor, "handler"),
        (t.leader, "supervising_leader"),
        (t.principal, "principal_leader"),
    ):
        resp = await act(client, who, cid, "sign", v, slot=slot)
        assert resp.status_code == 200, resp.text
        v = resp.json()["version"]
    assert resp.json()["status"] == "closed"
    return cid


async def resident(client: AsyncClient, name: str, village: str) -> dict[str, str]:
    """A resident who scanned the QR code of ``village`` (its scene is its code)."""
    resp = await client.post(
        "/api/v1/auth/wechat-login", json={"code": f"ok-{name}", "scene": village}
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def realistic_month(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    """A month in 通川区 as a demo would show it, one township unit per kind:

    - 东城街道 (good): 10 cases, all closed on time and rated satisfied, one of
      them only after an unsatisfied verdict and a second round (10% reopened);
    - 西城街道 (good, busy): 5 cases, 4 closed satisfied, 1 still being handled;
    - 凤北街道 (poor): 5 cases, each rated unsatisfied and reopened;
    - 双龙镇 (quiet): 2 cases, closed satisfied: too few to rank;
    - 北山镇 (new): 5 cases accepted, none closed yet.

    Returns the unit name of each kind.
    """
    units = {
        "good": ("XZ-511702001", "511702001001"),
        "busy": ("XZ-511702002", "511702002001"),
        "poor": ("XZ-511702005", "511702005001"),
        "quiet": ("XZ-511702105", "511702105001"),
        "new": ("XZ-511702112", "511702112001"),
    }
    teams = {k: await team(client, connection, code) for k, (code, _) in units.items()}
    residents = {k: await resident(client, f"rm.{k}", village) for k, (_, village) in units.items()}

    async def cases(kind: str, n: int, *verdicts: str, stop_at: str = "closed") -> None:
        for _ in range(n):
            await handled_case(
                client,
                teams[kind],
                residents[kind],
                units[kind][1],
                verdicts or ("satisfied",),
                stop_at=stop_at,
            )

    await cases("good", 9)
    await cases("good", 1, "unsatisfied", "satisfied")
    await cases("busy", 4)
    await cases("busy", 1, stop_at="accepted")
    await cases("poor", 5, "unsatisfied")
    await cases("quiet", 2)
    await cases("new", 5, stop_at="accepted")
    names = {
        "good": "东城街道纪工委",
        "busy": "西城街道纪工委",
        "poor": "凤北街道纪工委",
        "quiet": "双龙镇纪委",
        "new": "北山镇纪委",
    }
    return names
