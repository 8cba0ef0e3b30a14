"""Who may touch which object: every object-addressed route × every kind of caller.

``ROWS`` is the single source. Each row is one route with the status every
caller gets; adding a route means adding a row, and
``test_every_object_route_has_a_row`` walks the app's routes and fails when an
object-addressed one (a path parameter under /api/v1) has none, unless
``NOT_OWNED`` says why it needs none.

One world is built per database: two residents, supervisors of two township
units and of the county commission above them, a department handler, an
agent, a clerk and a committee member in each of two villages, an admin, and
no token at all; cases in several states, a callback sample, a notice, media,
disclosures, a routing override. Every cell runs inside a savepoint that is
rolled back, so cells do not disturb each other (the owner's rating does not
turn everyone after into 409). Every 404 is compared with the answer the same
caller gets for an object that does not exist: "not yours" must read exactly
like "not there". List routes (ledger, queue, "mine") carry a marker, the
tracking number of a case, that must appear for exactly the callers in
``sees``.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests import support
from tests.disclosures.helpers import finance
from tests.factories import login, make_staff, unit_id
from tests.mediafiles import png
from tests.workflow.helpers import TOWN_UNIT, VILLAGE, act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

API = "/api/v1"
SITE = "/q/"
OTHER_UNIT = "XZ-511702001"  # 东城街道纪工委, a sibling township unit
OTHER_VILLAGE = "511702001001"  # 大北街社区, under OTHER_UNIT
COMMISSION = "JW-511702"  # 通川区纪委监委, above both
COUNTY = "511702000000"

RESIDENTS = ("r1", "r2")
STAFF = (
    "sup1",
    "sup2",
    "commission",
    "handler",
    "agent",
    "clerk1",
    "committee1",
    "clerk2",
    "committee2",
    "admin",
)
ACTORS = (*RESIDENTS, *STAFF, "anon")


def staff_route(default: int, **cells: int) -> dict[str, int]:
    """A /staff route: every staff member gets ``default`` unless named;
    residents' tokens are refused (403) and no token is 401."""
    out = dict.fromkeys(STAFF, default) | {"r1": 403, "r2": 403, "anon": 401}
    return out | cells


def resident_route(**cells: int) -> dict[str, int]:
    """A resident's route: another resident gets 404 unless named; staff
    tokens are refused (403) and no token is 401."""
    out = {"r1": 404, "r2": 404} | dict.fromkeys(STAFF, 403) | {"anon": 401}
    return out | cells


def everyone(code: int) -> dict[str, int]:
    return dict.fromkeys(ACTORS, code)


def uploader_route(**cells: int) -> dict[str, int]:
    """Media: residents and staff both upload; someone else's file is 404."""
    return dict.fromkeys((*RESIDENTS, *STAFF), 404) | {"anon": 401} | cells


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    case_a: str  # r1's case, accepted and transferred to the handler's department
    case_a_no: str
    case_a_version: int
    case_r: str  # r1's case, resolved (to be rated)
    case_g: str  # the agent's offline filing
    track_no: str  # r1's anonymous filing
    query_code: str
    draw_id: int
    callback_id: int
    notice_id: int  # the handler's notice of the transfer
    media_id: str  # r1's upload, not yet attached
    draft_id: int  # a draft disclosure of village 1, by clerk1
    draft_version: int
    pub_id: int  # a published disclosure of village 1
    pub_version: int
    sup1_id: int
    unit1: int
    village1: str = VILLAGE
    override_id: int = 0
    designation_id: int = 0
    integrator_id: int = 0  # an Open311 integrator's api key
    case_c: str = ""  # r1's closed case, drawn for a callback

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "headers"}


# Values that name no object, for the "identical to missing" comparison.
MISSING: dict[str, Any] = {
    "case_a": uuid.UUID(int=1).hex,
    "case_r": uuid.UUID(int=2).hex,
    "case_g": uuid.UUID(int=3).hex,
    "track_no": "DZ20991231-999999",
    "draw_id": 2**31 - 1,
    "callback_id": 2**31 - 1,
    "notice_id": 2**31 - 1,
    "media_id": uuid.UUID(int=4).hex,
    "draft_id": 2**31 - 1,
    "pub_id": 2**31 - 1,
    "sup1_id": 2**31 - 1,
    "override_id": 2**31 - 1,
    "designation_id": 2**31 - 1,
    "integrator_id": 2**31 - 1,
}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str  # formatted with World.values()
    expect: Mapping[str, int]
    json: Any = None  # strings inside are formatted too
    files: Callable[[], dict[str, Any]] | None = None
    data: Mapping[str, str] | None = None
    # the World field the row addresses: swapped for MISSING[key] in the 404 probe
    key: str | None = None
    # list routes: the World field whose value must show up for exactly ``sees``
    marker: str | None = None
    sees: frozenset[str] = field(default_factory=frozenset)


CASE_FILE_A = staff_route(404, sup1=200, commission=200, handler=200, admin=200)
CASE_FILE_G = staff_route(404, sup1=200, commission=200, agent=200, admin=200)
DRAFT_SCOPE = dict(clerk1=200, committee1=200, sup1=200, commission=200, agent=200, admin=200)
SEES_A = frozenset({"sup1", "commission", "handler", "admin"})
ADMIN_ONLY = staff_route(403, admin=200)

ROWS: tuple[Row, ...] = (
    # --- the resident's own case --------------------------------------------
    Row("detail", "GET", "/complaints/{case_a}", resident_route(r1=200), key="case_a"),
    Row(
        "supplement",
        "POST",
        "/complaints/{case_a}/supplements",
        resident_route(r1=201),
        json={"content": "补充：公示栏照片已拍下"},
        key="case_a",
    ),
    Row(
        "rating",
        "POST",
        "/complaints/{case_r}/rating",
        resident_route(r1=201),
        json={"score": 4, "satisfaction": "satisfied"},
        key="case_r",
    ),
    Row(
        "mine",
        "GET",
        "/complaints/mine",
        resident_route(r1=200, r2=200),
        marker="case_a",
        sees=frozenset({"r1"}),
    ),
    # Tracking needs no login: the query code is the key, whoever holds it.
    Row("track", "GET", "/track/{track_no}?query_code={query_code}", everyone(200)),
    Row(
        "track, wrong code",
        "GET",
        "/track/{track_no}?query_code=WRONG234",
        everyone(404),
        key="track_no",
    ),
    # --- the staff side of cases ---------------------------------------------
    Row("case file", "GET", "/staff/complaints/{case_a}", CASE_FILE_A, key="case_a"),
    Row("agent's case file", "GET", "/staff/complaints/{case_g}", CASE_FILE_G, key="case_g"),
    Row("dossier", "GET", "/staff/complaints/{case_a}/dossier.zip", CASE_FILE_A, key="case_a"),
    Row("dossier pdf", "GET", "/staff/complaints/{case_a}/dossier.pdf", CASE_FILE_A, key="case_a"),
    Row("agent's pdf", "GET", "/staff/complaints/{case_g}/dossier.pdf", CASE_FILE_G, key="case_g"),
    Row(
        "action",
        "POST",
        "/staff/complaints/{case_a}/actions/reply",
        # the commission sees the case but works it only through orders;
        # an admin sees everything and works nothing
        staff_route(404, sup1=200, handler=200, commission=403, admin=403),
        json={"expected_version": "{case_a_version}", "public_reply": "正在核查"},
        key="case_a",
    ),
    # --- duplicates ------------------------------------------------------------
    # Any resident may follow someone's open, unprotected case; its owner is
    # told it is theirs. Unfollowing what one does not follow changes nothing.
    Row(
        "follow",
        "POST",
        "/complaints/{case_a}/follow",
        resident_route(r1=400, r2=200),
        key="case_a",
    ),
    Row(
        "unfollow",
        "DELETE",
        "/complaints/{case_a}/follow",
        resident_route(r1=200, r2=200),
        key="case_a",
    ),
    Row("duplicates", "GET", "/staff/complaints/{case_a}/duplicates", CASE_FILE_A, key="case_a"),
    Row(
        "merge",
        "POST",
        "/staff/complaints/{case_a}/merge",
        # into the agent's filing: only the child's own unit's supervisors merge
        staff_route(404, sup1=200, commission=403, handler=404, admin=403),
        json={"parent_id": "{case_g}", "expected_version": "{case_a_version}"},
        key="case_a",
    ),
    Row(
        "unmerge",
        "POST",
        "/staff/complaints/{case_a}/unmerge",
        staff_route(404, sup1=409, commission=403, handler=403, admin=403),
        json={"expected_version": "{case_a_version}"},
        key="case_a",
    ),
    Row(
        "issue order",
        "POST",
        "/staff/supervision-orders",
        # the role is checked before the case: a 403 that says nothing about it
        staff_route(403, sup1=201, commission=201, sup2=404),
        json={"complaint_id": "{case_a}", "reason": "请加快办理"},
        key="case_a",
    ),
    Row(
        "list orders",
        "GET",
        "/staff/supervision-orders?complaint_id={case_a}",
        CASE_FILE_A,
        key="case_a",
    ),
    Row(
        "orders of every visible case",
        "GET",
        "/staff/supervision-orders",
        staff_route(200),
        marker="case_a",
        sees=SEES_A,
    ),
    Row(
        "queue filtered by unit",
        "GET",
        "/staff/complaints?unit_id={unit1}",
        staff_route(200),
        marker="case_a_no",
        sees=SEES_A,
    ),
    Row(
        "queue filtered by village",
        "GET",
        "/staff/complaints?region_code={village1}",
        staff_route(200),
        marker="case_a_no",
        sees=SEES_A,
    ),
    Row(
        "ledger filtered by unit",
        "GET",
        "/staff/ledger.xlsx?unit_id={unit1}",
        staff_route(200),
        marker="case_a_no",
        sees=SEES_A,
    ),
    # --- callbacks: the drawing commission's working paper --------------------
    Row(
        "callback list",
        "GET",
        "/staff/callbacks?draw_id={draw_id}",
        staff_route(404, commission=200, admin=200),
        key="draw_id",
    ),
    Row(
        "callbacks of every draw",
        "GET",
        "/staff/callbacks",
        staff_route(200),
        marker="case_c",
        sees=frozenset({"commission", "admin"}),
    ),
    Row(
        "callback record",
        "POST",
        "/staff/callbacks/{callback_id}",
        # sup1 is the audited unit: it cannot even see the sample
        staff_route(404, commission=200, admin=403),
        json={"method": "phone", "reached": False},
        key="callback_id",
    ),
    # --- notices ---------------------------------------------------------------
    Row(
        "notice read",
        "POST",
        "/staff/notices/{notice_id}/read",
        staff_route(404, handler=204),
        key="notice_id",
    ),
    # --- media -----------------------------------------------------------------
    Row("media", "GET", "/media/{media_id}", uploader_route(r1=200), key="media_id"),
    Row(
        "media complete",
        "POST",
        "/media/{media_id}/complete",
        uploader_route(r1=200),
        key="media_id",
    ),
    # --- disclosures -------------------------------------------------------------
    Row("published disclosure", "GET", "/disclosures/{pub_id}", everyone(200)),
    Row("draft, public", "GET", "/disclosures/{draft_id}", everyone(404), key="draft_id"),
    # The resident site (pages, no token): a village's site shows its own only.
    Row("site: disclosure", "GET", "/q/{village1}/disclosures/{pub_id}", everyone(200)),
    Row(
        "site: draft", "GET", "/q/{village1}/disclosures/{draft_id}", everyone(404), key="draft_id"
    ),
    Row(
        "site: another village's disclosure",
        "GET",
        "/q/" + OTHER_VILLAGE + "/disclosures/{pub_id}",
        everyone(404),
        key="pub_id",
    ),
    Row(
        "draft disclosure, staff",
        "GET",
        "/staff/disclosures/{draft_id}",
        staff_route(404, **DRAFT_SCOPE),
        key="draft_id",
    ),
    Row(
        "draft edit",
        "PATCH",
        "/staff/disclosures/{draft_id}",
        staff_route(404, **DRAFT_SCOPE),
        json={"expected_version": "{draft_version}", "title": "2026年10月财务收支（修订）"},
        key="draft_id",
    ),
    Row(
        "draft rows import",
        "POST",
        "/staff/disclosures/{draft_id}/rows.xlsx",
        # the sheet is refused (400) only after the caller passed the gate
        staff_route(404, **{k: 400 for k in DRAFT_SCOPE}),
        files=lambda: {"file": ("rows.xlsx", b"not a sheet", "application/octet-stream")},
        data={"expected_version": "{draft_version}"},
        key="draft_id",
    ),
    Row(
        "draft publish",
        "POST",
        "/staff/disclosures/{draft_id}/publish",
        # a second pair of eyes: only the village's committee, not the drafter
        staff_route(404, **(dict.fromkeys(DRAFT_SCOPE, 403) | {"committee1": 200})),
        json={"expected_version": "{draft_version}"},
        key="draft_id",
    ),
    Row(
        "withdraw",
        "POST",
        "/staff/disclosures/{pub_id}/withdraw",
        staff_route(404, **DRAFT_SCOPE),
        json={"expected_version": "{pub_version}", "reason": "数据有误，需更正"},
        key="pub_id",
    ),
    Row(
        "correct",
        "POST",
        "/staff/disclosures/{pub_id}/correct",
        staff_route(404, **{k: 201 for k in DRAFT_SCOPE}),
        json={"reason": "期末余额有误"},
        key="pub_id",
    ),
    # --- administration ------------------------------------------------------------
    Row(
        "QR poster",
        "GET",
        "/staff/qrcodes/{village1}.png",
        staff_route(200),  # a poster hung in the village: any staff may print it
    ),
    Row("user", "GET", "/staff/users/{sup1_id}", ADMIN_ONLY),
    Row(
        "user edit",
        "PATCH",
        "/staff/users/{sup1_id}",
        ADMIN_ONLY,
        json={"display_name": "张新"},
    ),
    Row("user sessions", "GET", "/staff/users/{sup1_id}/sessions", ADMIN_ONLY),
    Row("user revoke", "POST", "/staff/users/{sup1_id}/revoke-sessions", ADMIN_ONLY),
    Row("user login attempts", "GET", "/staff/users/{sup1_id}/login-attempts", ADMIN_ONLY),
    Row("override revoke", "DELETE", "/staff/routing/overrides/{override_id}", ADMIN_ONLY),
    Row(
        "designation revoke",
        "DELETE",
        "/staff/routing/designated-cadres/{designation_id}",
        ADMIN_ONLY,
    ),
    Row("integrator key revoke", "POST", "/staff/integrators/{integrator_id}/revoke", ADMIN_ONLY),
)

# Object-addressed routes that need no row, and why.
NOT_OWNED = {
    "/api/v1/regions/{code}": "public reference data",
    "/api/v1/regions/{code}/children": "public reference data",
    "/api/v1/scenes/{scene}": "public reference data (what a village's QR code names)",
    "/api/v1/staff/calendar/{year}": "the working-day calendar, one per year, not owned",
}


async def build_world(client: AsyncClient, connection: AsyncConnection) -> World:
    people: dict[str, tuple[StaffRole, dict[str, str]]] = {
        "sup1": (StaffRole.supervisor, {"unit_code": TOWN_UNIT}),
        "sup2": (StaffRole.supervisor, {"unit_code": OTHER_UNIT}),
        "commission": (StaffRole.supervisor, {"unit_code": COMMISSION}),
        "agent": (StaffRole.agent, {"unit_code": TOWN_UNIT}),
        "clerk1": (StaffRole.clerk, {"region_code": VILLAGE}),
        "committee1": (StaffRole.committee, {"region_code": VILLAGE}),
        "clerk2": (StaffRole.clerk, {"region_code": OTHER_VILLAGE}),
        "committee2": (StaffRole.committee, {"region_code": OTHER_VILLAGE}),
        "admin": (StaffRole.admin, {}),
        "lead1": (StaffRole.leader, {"unit_code": TOWN_UNIT}),
        "lead2": (StaffRole.leader, {"unit_code": TOWN_UNIT}),
    }
    ids: dict[str, int] = {}
    h: dict[str, dict[str, str]] = {"anon": {}}
    for name, (role, where) in people.items():
        ids[name] = (await make_staff(connection, f"idor.{name}", role, **where)).id
        h[name] = await login(client, f"idor.{name}")
    h["r1"], h["r2"] = await citizen(client, "idor.r1"), await citizen(client, "idor.r2")

    # Case A: accepted and transferred to the handler's department.
    a = await file_case(client, h["r1"])
    dept = (await case(client, h["sup1"], a["id"]))["department_code"]
    await make_staff(
        connection, "idor.handler", StaffRole.handler, department_code=dept, region_code=COUNTY
    )
    h["handler"] = await login(client, "idor.handler")
    v = 1
    for action in ("accept", "transfer"):
        r = await act(client, h["sup1"], a["id"], action, v)
        assert r.status_code == 200, r.text
        v = r.json()["version"]
    # Case R: resolved, waiting for the resident's rating.
    rcase = (await file_case(client, h["r1"]))["id"]
    vr = 1
    for action, body in (("accept", {}), ("resolve", {"public_reply": "已公开账目"})):
        r = await act(client, h["sup1"], rcase, action, vr, **body)
        assert r.status_code == 200, r.text
        vr = r.json()["version"]
    # Case C: closed with all four signatures, then drawn for a callback.
    c = (await file_case(client, h["r1"]))["id"]
    vc = 1
    for who, action, body in (
        ("sup1", "accept", {}),
        ("sup1", "resolve", {"public_reply": "已公开账目"}),
        ("sup1", "sign", {"slot": "handler"}),
        ("sup1", "sign", {"slot": "complainant", "note": "电话确认"}),
        ("lead1", "sign", {"slot": "supervising_leader"}),
        ("lead2", "sign", {"slot": "principal_leader"}),
    ):
        r = await act(client, h[who], c, action, vc, **body)
        assert r.status_code == 200, r.text
        vc = r.json()["version"]
    assert r.json()["status"] == "closed"
    d = await client.post(f"{API}/staff/callbacks/draw?quarter=2026Q4", headers=h["commission"])
    assert d.status_code == 201, d.text
    draw_id = d.json()["draw_id"]
    listed = await client.get(f"{API}/staff/callbacks?draw_id={draw_id}", headers=h["commission"])
    callback_id = next(cb["id"] for cb in listed.json()["items"] if cb["complaint_id"] == c)
    # An anonymous filing, followed by its query code.
    n = await file_case(client, h["r1"], anonymous=True, contact_name=None, contact_phone=None)
    # The agent's offline filing.
    g = await client.post(
        f"{API}/staff/complaints",
        headers=h["agent"],
        json={
            "channel": "agent",
            "item_code": "0101",
            "region_code": VILLAGE,
            "content": "代群众反映：村务公开栏长期无内容。",
            "reporter_name": "王大爷",
            "reporter_phone": "13800002222",
        },
    )
    assert g.status_code == 201, g.text
    order = await client.post(
        f"{API}/staff/supervision-orders",
        headers=h["sup1"],
        json={"complaint_id": a["id"], "reason": "请加快办理"},
    )
    assert order.status_code == 201, order.text
    notices = (await client.get(f"{API}/staff/notices", headers=h["handler"])).json()["items"]
    notice_id = next(x["id"] for x in notices if x["complaint_id"] == a["id"])
    up = await client.post(
        f"{API}/media",
        headers=h["r1"],
        data={"kind": "image"},
        files={"file": ("p.png", png(), "image/png")},
    )
    assert up.status_code == 201, up.text
    draft = await client.post(f"{API}/staff/disclosures", headers=h["clerk1"], json=finance())
    assert draft.status_code == 201, draft.text
    second = await client.post(
        f"{API}/staff/disclosures",
        headers=h["clerk1"],
        json=finance(period="2026-09", title="2026年9月村级财务收支公开"),
    )
    pub = await client.post(
        f"{API}/staff/disclosures/{second.json()['id']}/publish",
        headers=h["committee1"],
        json={"expected_version": second.json()["lock_version"]},
    )
    assert pub.status_code == 200, pub.text
    override = await client.post(
        f"{API}/staff/routing/overrides",
        headers=h["admin"],
        json={
            "item_code": "0102",
            "region_code": VILLAGE,
            "unit_code": TOWN_UNIT,
            "reason": "试点",
        },
    )
    assert override.status_code == 201, override.text
    designation = await client.post(
        f"{API}/staff/routing/designated-cadres",
        headers=h["admin"],
        json={"unit_code": TOWN_UNIT, "item_code": "0101", "username": "idor.sup1"},
    )
    assert designation.status_code == 201, designation.text
    integrator = await client.post(
        f"{API}/staff/integrators", headers=h["admin"], json={"name": "某市12345热线"}
    )
    assert integrator.status_code == 201, integrator.text
    return World(
        headers=h,
        case_a=a["id"],
        case_a_no=a["tracking_no"],
        case_a_version=v,
        case_r=rcase,
        case_g=g.json()["id"],
        track_no=n["tracking_no"],
        query_code=n["query_code"],
        draw_id=draw_id,
        callback_id=callback_id,
        notice_id=notice_id,
        media_id=up.json()["id"],
        draft_id=draft.json()["id"],
        draft_version=draft.json()["lock_version"],
        pub_id=pub.json()["id"],
        pub_version=pub.json()["lock_version"],
        sup1_id=ids["sup1"],
        unit1=await unit_id(connection, TOWN_UNIT),
        override_id=override.json()["id"],
        designation_id=designation.json()["id"],
        integrator_id=integrator.json()["id"],
        case_c=c,
    )


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        filled = value.format(**values)
        whole = re.fullmatch(r"\{(\w+)\}", value)
        return values[whole.group(1)] if whole else filled  # keep ints as ints
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


async def send(
    client: AsyncClient, row: Row, headers: Mapping[str, str], values: Mapping[str, Any]
) -> Response:
    # Resident-site pages live outside /api/v1.
    prefix = "" if row.path.startswith(SITE) else API
    return await client.request(
        row.method,
        prefix + _fill(row.path, values),
        headers=dict(headers),
        json=_fill(row.json, values) if row.json is not None else None,
        files=row.files() if row.files else None,
        data=_fill(dict(row.data), values) if row.data else None,
    )


def _body(resp: Response) -> Any:
    """JSON from the API, the page itself from the resident site."""
    if resp.headers.get("content-type", "").startswith("text/html"):
        return resp.text
    return resp.json()


def shows(resp: Response, needle: str) -> bool:
    """Whether a response names the marker: JSON, or every sheet of an xlsx."""
    if resp.headers.get("content-type", "").startswith("application/vnd.openxml"):
        with zipfile.ZipFile(io.BytesIO(resp.content)) as z:
            return any(needle in z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return needle in resp.text


async def test_every_route_answers_every_caller_as_the_table_says(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    world = await build_world(client, connection)
    values = world.values()
    wrong: list[str] = []
    for row in ROWS:
        assert set(row.expect) == set(ACTORS), f"{row.name}: the row must name every caller"
        for actor in ACTORS:
            savepoint = await connection.begin_nested()
            try:
                resp = await send(client, row, world.headers[actor], values)
                missing = None
                if resp.status_code == 404 and row.key is not None:
                    missing = await send(
                        client, row, world.headers[actor], values | {row.key: MISSING[row.key]}
                    )
            finally:
                await savepoint.rollback()
            cell = f"{row.name} × {actor}"
            if resp.status_code != row.expect[actor]:
                wrong.append(f"{cell}: {resp.status_code}, expected {row.expect[actor]}")
                continue
            if resp.status_code == 404 and (
                missing is None or (missing.status_code, _body(missing)) != (404, _body(resp))
            ):
                wrong.append(f"{cell}: its 404 differs from a missing object's")
            if row.marker is not None and resp.status_code == 200:
                seen = shows(resp, str(values[row.marker]))
                if seen is not (actor in row.sees):
                    wrong.append(f"{cell}: {'shows' if seen else 'hides'} {row.marker}")
    assert not wrong, "\n".join(wrong)


def test_every_object_route_has_a_row(app: FastAPI) -> None:
    """A new route (or method) with a path parameter under /api/v1 fails here
    until it gets a row in ROWS, or a reason in NOT_OWNED."""
    params = re.compile(r"\{[^}]+\}")
    # A row's path, its query dropped; a route's {parameter} matches any one
    # segment, so rows naming a literal (actions/reply) cover {action} too.
    rows = [(row.method, re.sub(r"\?.*", "", API + row.path)) for row in ROWS]

    def covered(method: str, path: str) -> bool:
        pattern = re.compile(
            "".join(
                "[^/]+" if params.fullmatch(part) else re.escape(part)
                for part in re.split(r"(\{[^}]+\})", path)
            )
        )
        return any(m == method and pattern.fullmatch(p) for m, p in rows)

    routes = support.api_routes(app)
    assert len(routes) > 50, "no routes found: the walk over the app is broken"
    missing = [
        f"{method} {path}"
        for path, r in routes
        if path.startswith(API) and "{" in path and r.include_in_schema and path not in NOT_OWNED
        for method in sorted((r.methods or set()) - {"HEAD"})
        if not covered(method, path)
    ]
    assert not missing, "object-addressed routes without a row in ROWS:\n" + "\n".join(missing)
