"""A handler and a supervisor try to recover who filed an accusation or an
anonymous case from everything the API shows them (issue 13, item 1).

The attack is the one measured against format-1 chains: collect every
64-hex string shown, then for every event shown and every candidate actor
(every citizen and staff id that exists, and names/phones known to the
attacker) recompute the plain sha256 link, and a few other unkeyed digests,
until one matches. It must recover nothing from today's API, and it must
recover the resident from a legacy (format 1) event shown the way the case
file used to show it: that proves the attack can find the leak.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.complaints import events
from app.core import chain
from app.models import ComplaintEvent
from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.identity.helpers import accuse, anonymous, resident
from tests.workflow.helpers import TOWN_UNIT, act, case

pytestmark = pytest.mark.usefixtures("seeded")

NAME, PHONE = "上官明月", "13766554433"
HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _event_dicts(node: Any) -> Iterable[dict[str, Any]]:
    if isinstance(node, dict):
        if {"seq", "kind", "actor_kind"} <= set(node) and ("at" in node or "created_at" in node):
            yield node
        for v in node.values():
            yield from _event_dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _event_dicts(v)


def attack(
    shown: list[Any], complaint_id: str, ids: Iterable[int], words: Iterable[str]
) -> set[str]:
    """What the attacker recovers from ``shown`` (parsed JSON and text)."""
    text = "\n".join(s if isinstance(s, str) else json.dumps(s, ensure_ascii=False) for s in shown)
    found = {w for w in words if w in text}
    hexes = set(HEX64.findall(text))
    prevs = hexes | {chain.GENESIS}
    ids = list(ids)
    for w in words:
        for digest in (sha(w), sha(f"{complaint_id}:{w}"), sha(f"phone:{w}")):
            if digest in hexes:
                found.add(w)
    for e in (e for s in shown if not isinstance(s, str) for e in _event_dicts(s)):
        at = datetime.fromisoformat(e.get("at") or e["created_at"])
        for c in ids:
            fields = {
                "complaint_id": complaint_id,
                "seq": e["seq"],
                "kind": e["kind"],
                "public": e["public"],
                "actor_kind": e["actor_kind"],
                "actor_id": c,
                "from_status": e["from_status"],
                "to_status": e["to_status"],
                "note": e["note"],
                "data": e["data"],
                "created_at": chain.moment(at),
            }
            guesses = {chain.link(p, fields) for p in prevs}
            guesses |= {sha(str(c)), sha(f"citizen:{c}")}
            guesses.add(sha(f"{complaint_id}:{e['seq']}:{e['actor_kind']}:{c}"))
            if guesses & hexes:
                found.add(f"id:{c}")
    return found


async def everything_shown(client: AsyncClient, h: dict[str, str], cid: str) -> list[Any]:
    """The queue, the case file, and the exports this user can download."""
    shown: list[Any] = [
        (await client.get("/api/v1/staff/complaints", headers=h)).json(),
        (await client.get(f"/api/v1/staff/complaints/{cid}", headers=h)).json(),
    ]
    z = await client.get(f"/api/v1/staff/complaints/{cid}/dossier.zip", headers=h)
    if z.status_code == 200:
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            for name in zf.namelist():
                if name.endswith(".json"):
                    shown.append(json.loads(zf.read(name)))
                elif name.endswith(".jsonl"):
                    shown += [json.loads(x) for x in zf.read(name).decode().splitlines()]
    x = await client.get("/api/v1/staff/ledger.xlsx", headers=h)
    if x.status_code == 200:
        book = load_workbook(io.BytesIO(x.content), read_only=True)
        shown += [
            " ".join(str(c) for c in row if c is not None)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
        ]
    return shown


async def test_handler_and_supervisor_cannot_recover_a_protected_filer(
    client: AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    await make_staff(connection, "rc.zhang", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "rc.admin", StaffRole.admin)
    zhang = await login(client, "rc.zhang")
    others = [await resident(client, f"rc.r{i}") for i in range(3)]
    accuser = await resident(client, "rc.accuser")
    hidden = await resident(client, "rc.anon")
    acc = await accuse(client, accuser, name=NAME, phone=PHONE)
    anon = await anonymous(client, hidden)
    for cid in (acc["id"], anon["id"]):
        v = (await case(client, zhang, cid))["version"]
        for action in ("accept", "transfer"):
            resp = await act(client, zhang, cid, action, v)
            assert resp.status_code == 200, resp.text
            v = resp.json()["version"]
        await client.post(
            f"/api/v1/complaints/{cid}/supplements",
            headers=(accuser if cid == acc["id"] else hidden).headers,
            json={"content": "再补充一点情况", "media_ids": []},
        )
    file = await case(client, zhang, acc["id"])
    await make_staff(
        connection,
        "rc.handler",
        StaffRole.handler,
        department_code=file["handler_department_code"],
        region_code=file["handler_region_code"],
    )
    handler = await login(client, "rc.handler")
    users = await client.get("/api/v1/staff/users", headers=await login(client, "rc.admin"))
    assert users.status_code == 200, users.text
    listed = users.json()
    listed = listed["items"] if isinstance(listed, dict) else listed
    staff_ids = [u["id"] for u in listed]
    words = [NAME, PHONE, accuser.openid, hidden.openid, *(u["display_name"] for u in listed)]
    ids = range(1, max(r.id for r in [*others, accuser, hidden]) + 20)
    candidates = sorted({*ids, *staff_ids})
    secrets_ = {f"id:{accuser.id}", f"id:{hidden.id}", NAME, PHONE, accuser.openid, hidden.openid}

    for who, h, cases in (
        ("handler", handler, (acc, anon)),
        ("supervisor", zhang, (anon,)),  # the supervisor may see an accuser: not an attack
    ):
        for filed in cases:
            shown = await everything_shown(client, h, filed["id"])
            assert len(shown) >= 2, who
            recovered = attack(shown, filed["id"], candidates, words) & secrets_
            assert recovered == set(), f"{who} recovered {recovered} from {filed['tracking_no']}"

    # The same attack against a format-1 event, shown as the case file showed it
    # before (with its hash), finds the accuser at once.
    e = (
        await session.execute(
            select(ComplaintEvent).where(
                ComplaintEvent.complaint_id == acc["id"], ComplaintEvent.seq == 1
            )
        )
    ).scalar_one()
    legacy = ComplaintEvent(
        complaint_id=e.complaint_id,
        seq=1,
        kind=e.kind,
        public=e.public,
        actor_kind="citizen",
        actor_id=accuser.id,
        from_status=e.from_status,
        to_status=e.to_status,
        note=e.note,
        data=e.data,
        created_at=e.created_at,
        prev_hash=chain.GENESIS,
        hash_version=chain.LEGACY,
    )
    legacy.hash = events.compute_hash(chain.GENESIS, legacy)
    old_view = next(x for x in file["events"] if x["seq"] == 1) | {
        "actor_id": None,
        "hash": legacy.hash,
    }
    recovered = attack([{"events": [old_view]}], acc["id"], candidates, words) & secrets_
    assert recovered == {f"id:{accuser.id}"}
