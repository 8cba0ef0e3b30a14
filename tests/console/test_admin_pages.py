"""Administration pages, in-process on SQLite and PostgreSQL: accounts (their
sessions die when disabled or reset), routing rules and the live preview,
the calendar import, QR posters; only admins, CSRF on every form."""

from __future__ import annotations

import json

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.models import StaffUser
from app.models.enums import StaffRole
from tests.console.helpers import signed_in
from tests.factories import make_staff
from tests.workflow.helpers import TOWN_UNIT, VILLAGE

pytestmark = pytest.mark.usefixtures("seeded")
NEW_PASSWORD = "Lu7#qiao-Hua!2026"


async def staff_id(connection: AsyncConnection, username: str) -> int:
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        stmt = select(StaffUser.id).where(StaffUser.username == username)
        return int((await s.execute(stmt)).scalar_one())


async def test_admin_creates_disables_and_resets_a_user(
    client: AsyncClient, connection: AsyncConnection, app: object
) -> None:
    await make_staff(connection, "pa.admin", StaffRole.admin)
    csrf = await signed_in(client, "pa.admin")
    page = await client.get("/console/admin/users")
    assert page.status_code == 200 and "新建账号" in page.text
    weak = await client.post(
        "/console/admin/users",
        data={"csrf_token": csrf, "username": "pa.new", "password": "12345678",
              "role": "supervisor", "display_name": "新干部", "unit_code": TOWN_UNIT},
    )  # fmt: skip
    assert weak.status_code in (400, 422) and "pa.new" in weak.text  # the form keeps its values
    made = await client.post(
        "/console/admin/users",
        data={"csrf_token": csrf, "username": "pa.new", "password": NEW_PASSWORD,
              "role": "supervisor", "display_name": "新干部", "unit_code": TOWN_UNIT},
    )  # fmt: skip
    assert made.status_code == 303, made.text
    uid = await staff_id(connection, "pa.new")

    # The new user signs in, in a browser of their own.
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as other:  # type: ignore[arg-type]
        await signed_in(other, "pa.new", NEW_PASSWORD)
        assert (await other.get("/console/inbox")).status_code == 200
        disabled = await client.post(
            f"/console/admin/users/{uid}/disable", data={"csrf_token": csrf}
        )
        assert disabled.status_code == 303
        gone = await other.get("/console/inbox")
        assert gone.status_code == 303 and "/console/login" in gone.headers["location"]

    enabled = await client.post(f"/console/admin/users/{uid}/enable", data={"csrf_token": csrf})
    assert enabled.status_code == 303
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as other:  # type: ignore[arg-type]
        await signed_in(other, "pa.new", NEW_PASSWORD)
        reset = await client.post(
            f"/console/admin/users/{uid}/password",
            data={"csrf_token": csrf, "password": "Qing$he-Bridge-77"},
        )
        assert reset.status_code == 303, reset.text
        assert (await other.get("/console/inbox")).status_code == 303  # its session ended
        await signed_in(other, "pa.new", "Qing$he-Bridge-77")
        revoke = await client.post(
            f"/console/admin/users/{uid}/revoke-sessions", data={"csrf_token": csrf}
        )
        assert revoke.status_code == 303
        assert (await other.get("/console/inbox")).status_code == 303
    # An admin cannot disable themselves; an unknown id is 404.
    me = await staff_id(connection, "pa.admin")
    own = await client.post(f"/console/admin/users/{me}/disable", data={"csrf_token": csrf})
    assert own.status_code in (400, 403, 409)
    missing = await client.post("/console/admin/users/99999999/disable", data={"csrf_token": csrf})
    assert missing.status_code == 404


async def test_routing_preview_rules_calendar_and_posters(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "pa.admin2", StaffRole.admin)
    csrf = await signed_in(client, "pa.admin2")
    page = await client.get("/console/admin/routing")
    assert page.status_code == 200 and 'hx-post="/console/admin/routing/preview"' in page.text
    preview = await client.post(
        "/console/admin/routing/preview",
        data={"csrf_token": csrf, "item_code": "0101", "region_code": VILLAGE},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200 and "凤北街道" in preview.text
    assert '<ol class="trace">' in preview.text and "<html" not in preview.text
    bad = await client.post(
        "/console/admin/routing/preview",
        data={"csrf_token": csrf, "item_code": "01\x00", "region_code": VILLAGE},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 422
    rule = await client.post(
        "/console/admin/routing/overrides",
        data={"csrf_token": csrf, "item_code": "0101", "region_code": VILLAGE,
              "unit_code": "JW-511702", "reason": "试点：由区纪委直接受理"},
    )  # fmt: skip
    assert rule.status_code == 303, rule.text
    after = await client.post(
        "/console/admin/routing/preview",
        data={"csrf_token": csrf, "item_code": "0101", "region_code": VILLAGE},
        headers={"HX-Request": "true"},
    )
    assert "调整规则" in after.text and "通川区纪委" in after.text

    schedule = {"year": 2031, "holidays": [{"date": "2031-10-01", "note": "国庆节"}],
                "workdays": ["2031-09-28"]}  # fmt: skip
    imported = await client.post(
        "/console/admin/calendar",
        data={"csrf_token": csrf, "schedule": json.dumps(schedule)},
    )
    assert imported.status_code == 303, imported.text
    cal = await client.get("/console/admin/calendar")
    assert "2031-10-01" in cal.text and "国庆节" in cal.text
    for junk in ("not json", "[" * 5000, '{"year": 1900}', '{"year": NaN}'):
        resp = await client.post(
            "/console/admin/calendar", data={"csrf_token": csrf, "schedule": junk}
        )
        assert 400 <= resp.status_code < 500, junk

    png = await client.get(f"/console/admin/qrcodes/{VILLAGE}.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert "attachment" in png.headers["content-disposition"]
    sheet = await client.get("/console/admin/qrcodes/township/511702005000")
    assert sheet.status_code == 200 and f"/console/admin/qrcodes/{VILLAGE}.png" in sheet.text
    assert (await client.get("/console/admin/qrcodes/township/511702005001")).status_code == 400
    assert (await client.get("/console/admin/qrcodes/511702000000.png")).status_code == 400


async def test_only_admins_and_only_with_csrf(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    await make_staff(connection, "pa.sup", StaffRole.supervisor, unit_code=TOWN_UNIT)
    await make_staff(connection, "pa.admin3", StaffRole.admin)
    uid = await staff_id(connection, "pa.sup")
    csrf = await signed_in(client, "pa.sup")
    for path in ("/console/admin/users", "/console/admin/routing", "/console/admin/calendar"):
        assert (await client.get(path)).status_code == 403, path
    for path in (f"/console/admin/users/{uid}/disable", "/console/admin/routing/overrides"):
        assert (await client.post(path, data={"csrf_token": csrf})).status_code == 403
    client.cookies.clear()
    await signed_in(client, "pa.admin3")
    posts = [
        "/console/admin/users",
        f"/console/admin/users/{uid}/disable",
        f"/console/admin/users/{uid}/enable",
        f"/console/admin/users/{uid}/password",
        f"/console/admin/users/{uid}/revoke-sessions",
        "/console/admin/routing/overrides",
        "/console/admin/routing/overrides/1/revoke",
        "/console/admin/routing/designations",
        "/console/admin/routing/designations/1/revoke",
        "/console/admin/routing/preview",
        "/console/admin/calendar",
    ]
    for path in posts:
        resp = await client.post(path, data={"password": NEW_PASSWORD})
        assert resp.status_code == 403, path
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        assert (await s.get(StaffUser, uid)).active  # type: ignore[union-attr]
