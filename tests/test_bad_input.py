"""Every hostile input, to every operation that takes input, on SQLite and PostgreSQL.

Table-driven from the OpenAPI document: each operation gets a valid baseline
request (its body from ``BODIES``, its path and query values by parameter name),
then every parameter and every body field in turn is replaced by the hostile
values of its type: control characters and lone surrogates in text, integers
past the INTEGER column, NaN and Infinity, dates in year 1 and 9999, enums from
nowhere, "²³" for a number. Then whole bodies: NaN, broken UTF-8, 10,000 levels
of nesting, 2 MB. Each answer must be below 500; a value the rules forbid must be
refused with a 4xx; and a refused request must have written nothing (every
table counted before and after, bar the rate-limit and login-attempt ledgers,
which exist to record refusals).

A new operation with a body needs its baseline in ``BODIES``, and a new path
parameter its value in ``path_value``: ``test_every_operation_is_covered`` says so.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from httpx import AsyncClient, Response
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

import app.models  # noqa: F401  (every table registered on the metadata)
from app.core.db import Base
from app.models.enums import StaffRole
from app.openapi import build_openapi
from app.stats import projector
from tests.conftest import DEFAULT_NOW
from tests.disclosures.helpers import finance
from tests.factories import PASSWORD, login, make_staff
from tests.mediafiles import png
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

DOC = build_openapi()
SCHEMAS = DOC["components"]["schemas"]
METHODS = {"get", "post", "put", "patch", "delete"}
# Ledgers that record refusals on purpose (rate-limit counters, failed logins).
LEDGERS = {"shared_state", "staff_login_attempts"}
TABLES = sorted(set(Base.metadata.tables) - LEDGERS)
ID_NAME = re.compile(r"(^|_)ids?$")


@dataclass
class World:
    tokens: dict[str, dict[str, str]]
    ids: dict[str, Any] = field(default_factory=dict)


def _xlsx() -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["日期", "摘要", "收入", "经办人"])
    ws.append(["2026-10-08", "上级拨付", 100, "李会计"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def build_world(client: AsyncClient, connection: AsyncConnection) -> World:
    staff = {
        "admin": ("bi.admin", StaffRole.admin, {}),
        "zhang": ("bi.zhang", StaffRole.supervisor, {"unit_code": TOWN_UNIT}),
        "clerk": ("bi.clerk", StaffRole.clerk, {"region_code": VILLAGE}),
        "committee": ("bi.committee", StaffRole.committee, {"region_code": VILLAGE}),
    }
    tokens: dict[str, dict[str, str]] = {"none": {}}
    for actor, (username, role, scope) in staff.items():
        await make_staff(connection, username, role, **scope)
        tokens[actor] = await login(client, username)
    victim = await make_staff(connection, "bi.victim", StaffRole.supervisor, unit_code=TOWN_UNIT)
    tokens["resident"] = await citizen(client, "bi-resident")
    w = World(tokens)
    filed = await file_case(client, tokens["resident"])
    anon = await file_case(
        client, tokens["resident"], anonymous=True, contact_name=None, contact_phone=None
    )
    media = await client.post(
        "/api/v1/media",
        headers=tokens["resident"],
        files={"file": ("a.png", png(), "image/png")},
        data={"kind": "image"},
    )
    disclosure = await client.post(
        "/api/v1/staff/disclosures", headers=tokens["clerk"], json=finance()
    )
    override = await client.post(
        "/api/v1/staff/routing/overrides",
        headers=tokens["admin"],
        json={
            "item_code": "0101",
            "region_code": VILLAGE,
            "unit_code": TOWN_UNIT,
            "reason": "覆盖",
        },
    )
    designation = await client.post(
        "/api/v1/staff/routing/designated-cadres",
        headers=tokens["admin"],
        json={"unit_code": TOWN_UNIT, "item_code": "0101", "username": "bi.zhang"},
    )
    integrator = await client.post(
        "/api/v1/staff/integrators", headers=tokens["admin"], json={"name": "某热线"}
    )
    for resp in (media, disclosure, override, designation, integrator):
        assert resp.status_code == 201, resp.text
    o311 = await client.post(
        "/open311/v2/requests.json", data=open311_form(integrator.json()["api_key"])
    )
    assert o311.status_code == 200, o311.text
    w.ids.update(
        complaint_id=filed["id"],
        tracking_no=anon["tracking_no"],
        query_code=anon["query_code"],
        media_id=media.json()["id"],
        disclosure_id=disclosure.json()["id"],
        lock_version=disclosure.json()["lock_version"],
        override_id=override.json()["id"],
        designation_id=designation.json()["id"],
        staff_id=victim.id,
        integrator_id=integrator.json()["id"],
        api_key=integrator.json()["api_key"],
        token=o311.json()[0]["token"],
        service_request_id=o311.json()[0]["service_request_id"],
    )
    return w


def open311_form(api_key: str) -> dict[str, Any]:
    return {
        "api_key": api_key,
        "service_code": "0101",
        "address_id": VILLAGE,
        "lat": "31.2101",
        "long": "107.5002",
        "description": "村委会门口的路灯坏了两个月，晚上出门很不方便。",
        "last_name": "李",
        "first_name": "大姐",
        "phone": "13900002222",
        "attribute[priority][]": ["elderly"],
    }


# --- baselines ------------------------------------------------------------------------

Body = Callable[[World], dict[str, Any]]
BODIES: dict[tuple[str, str], Body] = {
    ("post", "/api/v1/auth/wechat-login"): lambda w: {"code": "ok-bi-other", "scene": VILLAGE},
    ("post", "/api/v1/auth/refresh"): lambda w: {"refresh_token": "x" * 40},
    ("post", "/api/v1/staff/auth/refresh"): lambda w: {"refresh_token": "x" * 40},
    ("post", "/api/v1/taxonomy/suggest"): lambda w: {"text": "村里的账目好几个月没公开"},
    ("post", "/api/v1/media"): lambda w: {"kind": "image"},
    ("post", "/api/v1/media/upload-tickets"): lambda w: {
        "kind": "image",
        "content_type": "image/jpeg",
        "size": 1000,
    },
    ("post", "/api/v1/complaints"): lambda w: {
        "item_code": "0101",
        "region_code": VILLAGE,
        "content": "村里的财务收支好几个季度都没有公开了，公示栏一直是空的。",
        "anonymous": False,
        "contact_name": "李大姐",
        "contact_phone": "13900001111",
        "media_ids": [],
        "location": {"lat": 31.2, "lng": 107.5, "address": "村委会门口"},
    },
    ("post", "/api/v1/complaints/{complaint_id}/supplements"): lambda w: {
        "content": "补充一些情况说明",
        "media_ids": [],
    },
    ("post", "/api/v1/complaints/{complaint_id}/rating"): lambda w: {
        "score": 5,
        "satisfaction": "satisfied",
        "comment": "办得好",
    },
    ("post", "/api/v1/staff/callbacks/{callback_id}"): lambda w: {
        "method": "phone",
        "reached": True,
        "resolved": True,
        "satisfaction": "satisfied",
        "note": "电话回访",
    },
    ("post", "/api/v1/staff/auth/login"): lambda w: {"username": "bi.zhang", "password": PASSWORD},
    ("post", "/api/v1/staff/integrators"): lambda w: {
        "name": "某市12345热线",
        "contact": "张工",
        "requests_per_hour": 100,
    },
    ("post", "/open311/v2/requests.{format}"): lambda w: open311_form(w.ids["api_key"]),
    ("post", "/api/v1/staff/users"): lambda w: {
        "username": "bi.new",
        "password": "Qv7!mTz#9pLw",
        "role": "supervisor",
        "display_name": "新干部",
        "unit_code": TOWN_UNIT,
    },
    ("patch", "/api/v1/staff/users/{staff_id}"): lambda w: {"display_name": "改名"},
    ("post", "/api/v1/staff/routing/preview"): lambda w: {
        "item_code": "0101",
        "region_code": VILLAGE,
        "accusation": False,
        "received_at": "2026-11-20T09:30:00+08:00",
    },
    ("post", "/api/v1/staff/routing/overrides"): lambda w: {
        "item_code": "0102",
        "region_code": VILLAGE,
        "unit_code": TOWN_UNIT,
        "reason": "测试覆盖",
    },
    ("post", "/api/v1/staff/routing/designated-cadres"): lambda w: {
        "unit_code": TOWN_UNIT,
        "item_code": "0102",
        "username": "bi.zhang",
    },
    ("put", "/api/v1/staff/calendar/{year}"): lambda w: {
        "holidays": ["2027-10-01"],
        "workdays": [],
    },
    ("post", "/api/v1/staff/complaints"): lambda w: {
        "channel": "visit",
        "item_code": "0101",
        "region_code": VILLAGE,
        "content": "王大爷来访反映村里账目不公开",
        "reporter_name": "王大爷",
        "reporter_phone": "13800002222",
        "anonymous": False,
        "accused_level": "village",
        "priority_flags": ["elderly"],
        "media_ids": [],
        "received_at": "2026-11-23T09:30:00+08:00",
    },
    ("post", "/api/v1/staff/complaints/{complaint_id}/actions/{action}"): lambda w: {
        "expected_version": 1,
        "note": "已受理",
        "media_ids": [],
    },
    ("post", "/api/v1/complaints/similar"): lambda w: {
        "region_code": VILLAGE,
        "item_code": "0101",
        "content": "村里的财务收支好几个季度都没有公开了",
        "location": {"lat": 31.2, "lng": 107.5, "address": "村委会门口"},
    },
    ("post", "/api/v1/staff/complaints/{complaint_id}/merge"): lambda w: {
        "parent_id": w.ids["complaint_id"],
        "expected_version": 1,
        "note": "同一问题",
    },
    ("post", "/api/v1/staff/complaints/{complaint_id}/unmerge"): lambda w: {
        "expected_version": 1,
        "note": "不是同一问题",
    },
    ("post", "/api/v1/staff/supervision-orders"): lambda w: {
        "complaint_id": w.ids["complaint_id"],
        "reason": "请加快办理",
        "deadline_days": 5,
    },
    ("post", "/api/v1/staff/disclosures"): lambda w: finance(),
    ("patch", "/api/v1/staff/disclosures/{disclosure_id}"): lambda w: {
        "expected_version": w.ids["lock_version"],
        "title": "2026年10月村级财务收支公开（修订）",
    },
    ("post", "/api/v1/staff/disclosures/{disclosure_id}/publish"): lambda w: {
        "expected_version": w.ids["lock_version"],
        "note": "同意公开",
    },
    ("post", "/api/v1/staff/disclosures/{disclosure_id}/withdraw"): lambda w: {
        "expected_version": w.ids["lock_version"],
        "reason": "数据有误需撤回",
    },
    ("post", "/api/v1/staff/disclosures/{disclosure_id}/correct"): lambda w: {
        "reason": "更正一笔支出",
    },
    ("post", "/api/v1/staff/disclosures/{disclosure_id}/rows.xlsx"): lambda w: {
        "expected_version": w.ids["lock_version"],
    },
    ("post", "/api/v1/staff/historical-cases"): lambda w: {
        "rows": [
            {
                "channel": "letter",
                "item_code": "0101",
                "region_code": VILLAGE,
                "content": "来信反映村里财务没有公开",
                "received_at": "2025-03-10T09:30:00+08:00",
                "accepted_at": "2025-03-11T09:30:00+08:00",
                "closed_at": "2025-04-02T16:00:00+08:00",
                "outcome": "closed",
                "result": "已督促公开",
                "anonymous": False,
                "contact_name": "刘大爷",
                "contact_phone": "13500005555",
            }
        ]
    },
    ("post", "/api/v1/staff/historical-cases.xlsx"): lambda w: {},
}
FILES: dict[str, tuple[str, bytes, str]] = {
    "/api/v1/media": ("a.png", png(), "image/png"),
    "/api/v1/staff/disclosures/{disclosure_id}/rows.xlsx": (
        "rows.xlsx",
        _xlsx(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "/api/v1/staff/historical-cases.xlsx": (
        "history.xlsx",
        _xlsx(),  # a sheet of the wrong columns: refused (400), nothing written
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
}
QUERY: dict[str, Callable[[World], Any]] = {
    "query_code": lambda w: w.ids["query_code"],
    "quarter": lambda w: "2026Q4",
    "draw_id": lambda w: 1,
    "complaint_id": lambda w: w.ids["complaint_id"],
    "q": lambda w: "财务",
    "region_code": lambda w: VILLAGE,
}


def path_value(name: str, w: World) -> Any:
    fixed = {
        "code": VILLAGE,
        "scene": VILLAGE,
        "region_code": VILLAGE,
        "year": 2027,
        "action": "accept",
        "notice_id": 1,
        "callback_id": 1,
        "format": "json",
        "service_code": "0101",
    }
    return fixed[name] if name in fixed else w.ids[name]


def actor(path: str, method: str) -> str:
    if not path.startswith("/api/v1/staff/"):
        return "resident"
    if path.startswith("/api/v1/staff/historical-cases"):
        return "admin"
    if path.startswith(
        (
            "/api/v1/staff/users",
            "/api/v1/staff/routing/",
            "/api/v1/staff/calendar",
            "/api/v1/staff/integrators",
        )
    ):
        return "admin" if path != "/api/v1/staff/routing/preview" else "zhang"
    if path.startswith("/api/v1/staff/disclosures"):
        return "committee" if path.endswith(("/publish", "/withdraw")) else "clerk"
    return "zhang"


# --- hostile values by schema type ----------------------------------------------------


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    options = [resolve(s) for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return options[0] if len(options) == 1 else schema


TEXT = [("\x00", True), ("a\x00b", True), ("\x1b[31m", True), ("\x7f", True), ("²³", False)]
JSON_TEXT = [*TEXT, ("\ud800", True), ("x" * 100_000, False)]
INTS = [(2**31, True), (2**62, True), (2**70, True), (-(2**70), True), ("²³", True), (-1, False)]
NUMBERS = [(float("nan"), True), (float("inf"), True), ("NaN", True), (1e308, False)]


def hostile(schema: dict[str, Any], *, in_url: bool) -> list[tuple[Any, bool]]:
    """(value, must be refused) pairs for a field of this schema."""
    s = resolve(schema)
    kind = s.get("type")
    if "enum" in s:
        return [("galaxy", True), ("\x00", True)]
    if kind == "integer":
        return INTS if not in_url else [(str(v), must) for v, must in INTS]
    if kind == "number" or (not kind and "anyOf" in s):  # floats and decimals
        return NUMBERS
    if kind == "boolean":
        return [("maybe", True), ("\x00", True)]
    if kind == "array":
        inner = hostile(s.get("items", {}), in_url=in_url)
        return [([v], must) for v, must in inner[:4]] + [([{"k\x00": "v"}], True)]
    if kind == "object":
        return [({"k\x00": "v"}, True), ({"k": "\x00"}, True), ("\x00", True)]
    if s.get("format") == "date":
        return [("0001-01-01", True), ("9999-12-31", True), ("0", True), *TEXT]
    if s.get("format") == "date-time":
        return [
            ("9999-12-31T23:59:59+14:00", True),
            ("0001-01-01T00:00:00Z", True),
            ("2026-11-20T09:30:00", True),
            *TEXT,
        ]
    if s.get("format") == "binary" or "contentMediaType" in s:  # the uploaded file itself
        return []
    texts = TEXT if in_url else JSON_TEXT
    if in_url:
        texts = [*texts, ("a\tb", True), ("x" * 3000, False)]
    return texts


# --- the run --------------------------------------------------------------------------


@dataclass
class Probe:
    where: str
    value: Any
    must_refuse: bool
    status: int = 0
    note: str = ""


async def counts(connection: AsyncConnection) -> dict[str, int]:
    sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in TABLES)
    row = (await connection.execute(text(sql))).one()
    return dict(zip(TABLES, row, strict=True))


def _json(body: Any) -> bytes:
    # ensure_ascii writes a lone surrogate as its \ud800 escape; allow_nan writes NaN.
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()


OPERATIONS = sorted(
    (method, path)
    for path, item in DOC["paths"].items()
    for method, op in item.items()
    if method in METHODS
    and (op.get("requestBody") or any(p["in"] != "header" for p in op.get("parameters", [])))
    and not path.startswith(("/healthz", "/readyz"))
)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_hostile_input_is_refused_cleanly(
    client: AsyncClient, connection: AsyncConnection, method: str, path: str
) -> None:
    w = await build_world(client, connection)
    op = DOC["paths"][path][method]
    headers = dict(w.tokens[actor(path, method)])
    params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
    path_vals = {p["name"]: path_value(p["name"], w) for p in params if p["in"] == "path"}
    query = {
        p["name"]: QUERY[p["name"]](w) for p in params if p["in"] == "query" and p["name"] in QUERY
    }
    body_schema: dict[str, Any] = {}
    media_type = None
    if "requestBody" in op:
        media_type, content = next(iter(op["requestBody"]["content"].items()))
        body_schema = resolve(content["schema"])
    body = BODIES[(method, path)](w) if "requestBody" in op else None

    async def send(
        pv: dict[str, Any], q: dict[str, Any], b: Any, raw: bytes | None = None
    ) -> Response:
        url = path.format(**{k: quote(str(v), safe="") for k, v in pv.items()})
        if media_type == "multipart/form-data":
            files = {"file": FILES[path]}
            data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (b or {}).items()}
            return await client.request(
                method, url, params=q, headers=headers, data=data, files=files
            )
        if media_type == "application/x-www-form-urlencoded" and raw is None:
            return await client.request(method, url, params=q, headers=headers, data=b)
        if b is None and raw is None:
            return await client.request(method, url, params=q, headers=headers)
        content = raw if raw is not None else _json(b)
        h = {**headers, "content-type": "application/json"}
        return await client.request(method, url, params=q, headers=h, content=content)

    probes: list[Probe] = []

    async def probe(
        p: Probe, pv: dict[str, Any], q: dict[str, Any], b: Any, raw: bytes | None = None
    ) -> None:
        # The statistics projector applies what earlier requests wrote first, so
        # the rollups it fills are compared too: a refusal queues no event.
        async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
            await projector.drain(s, now=DEFAULT_NOW)
            await s.commit()
        before = await counts(connection)
        resp = await send(pv, q, b, raw)
        p.status = resp.status_code
        if resp.status_code >= 500:
            p.note = resp.text[:200]
        elif p.must_refuse and not 400 <= resp.status_code < 500:
            p.note = "accepted"
        elif resp.status_code >= 400:
            after = await counts(connection)
            changed = {t: (before[t], after[t]) for t in TABLES if before[t] != after[t]}
            if changed:
                p.note = f"refused but wrote {changed}"
        probes.append(p)

    for prm in params:
        name, where = prm["name"], prm["in"]
        for value, must in hostile(prm["schema"], in_url=True):
            p = Probe(f"{where} {name}", value, must)
            if where == "path":
                await probe(p, {**path_vals, name: value}, query, body)
            else:
                await probe(p, path_vals, {**query, name: value}, body)
    for name, prop in body_schema.get("properties", {}).items():
        for value, must in hostile(prop, in_url=media_type != "application/json"):
            changed = {**(body or {}), name: value}
            await probe(Probe(f"body {name}", value, must), path_vals, query, changed)
    if media_type == "application/json":
        raws = [
            b"NaN",
            _json({**(body or {}), "__nan": float("nan")}),
            b'{"\\ud800": 1}',
            b"\xff\xfe\x00",
            b"[" * 10_000 + b"]" * 10_000,
            b'{"a": ' + b"1" * 5000 + b"}",
            b" " * (2 * 1024 * 1024),
        ]
        for raw in raws:
            await probe(Probe("whole body", raw[:40], True), path_vals, query, None, raw)

    bad = [p for p in probes if p.note]
    assert not bad, "\n".join(f"{p.where}={p.value!r:.60} → {p.status} {p.note}" for p in bad)
    assert probes, "no input was probed"


def test_every_operation_is_covered() -> None:
    known = ["complaint_id", "tracking_no", "query_code", "media_id", "disclosure_id"]
    known += ["lock_version", "override_id", "designation_id", "staff_id"]
    known += ["integrator_id", "api_key", "token", "service_request_id"]
    w = World(tokens={}, ids=dict.fromkeys(known, 1))  # what build_world provides
    missing = []
    for method, path in OPERATIONS:
        op = DOC["paths"][path][method]
        if "requestBody" in op and (method, path) not in BODIES:
            missing.append(f"{method} {path}: add a baseline body to BODIES")
        for p in op.get("parameters", []):
            if p["in"] == "path":
                try:
                    path_value(p["name"], w)
                except KeyError:
                    missing.append(f"{method} {path}: add a value for path parameter {p['name']}")
    assert not missing, "\n".join(missing)


def _integers(schema: dict[str, Any]) -> list[dict[str, Any]]:
    s = schema
    while "$ref" in s:
        s = SCHEMAS[s["$ref"].rsplit("/", 1)[-1]]
    found = [i for sub in s.get("anyOf", []) + s.get("oneOf", []) for i in _integers(sub)]
    if s.get("type") == "integer":
        found.append(s)
    if s.get("type") == "array":
        found += _integers(s.get("items", {}))
    return found


def _properties(schema: dict[str, Any], seen: set[str]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return out
        seen.add(name)
        schema = SCHEMAS[name]
    for sub in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        out += _properties(sub, seen)
    if schema.get("type") == "array":
        out += _properties(schema.get("items", {}), seen)
    for prop, sub in schema.get("properties", {}).items():
        out.append((prop, sub))
        out += _properties(sub, seen)
    return out


def test_every_integer_id_a_client_sends_has_the_column_range() -> None:
    """An id past 2**31-1 reaches SQL as an overflow (a 500 on PostgreSQL) unless the
    document, and so the validation, bounds it: DbId in app.core.schemas."""
    unbounded = []
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for p in op.get("parameters", []):
                named = ID_NAME.search(p["name"]) or p["in"] == "path"
                if named and any("maximum" not in s for s in _integers(p["schema"])):
                    unbounded.append(f"{method} {path} {p['in']} {p['name']}")
            for content in op.get("requestBody", {}).get("content", {}).values():
                for prop, sub in _properties(content["schema"], set()):
                    if ID_NAME.search(prop) and any("maximum" not in s for s in _integers(sub)):
                        unbounded.append(f"{method} {path} body {prop}")
    assert not unbounded, "integer ids without a maximum:\n" + "\n".join(unbounded)
