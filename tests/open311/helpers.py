from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import StaffRole
from tests.factories import login, make_staff
from tests.workflow.helpers import VILLAGE

BASE = "/open311/v2"
PUBLIC_TEXT = "村委会门口的路灯坏了两个月，晚上出门很不方便，希望尽快修好。"


async def admin(
    client: AsyncClient, connection: AsyncConnection, name: str = "o311.admin"
) -> dict[str, str]:
    await make_staff(connection, name, StaffRole.admin)
    return await login(client, name)


async def issue_key(client: AsyncClient, h: dict[str, str], **kw: Any) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/staff/integrators", headers=h, json={"name": "达州市12345热线", **kw}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def form(api_key: str, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "api_key": api_key,
        "service_code": "0101",
        "address_id": VILLAGE,
        "description": PUBLIC_TEXT,
        "first_name": "大姐",
        "last_name": "李",
        "phone": "13900002222",
    }
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


async def post(client: AsyncClient, data: Any, fmt: str = "json") -> Response:
    return await client.post(f"{BASE}/requests.{fmt}", data=data)


async def filed(client: AsyncClient, api_key: str, **kw: Any) -> dict[str, Any]:
    resp = await post(client, form(api_key, **kw))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1, body
    return body[0]  # type: ignore[no-any-return]
