from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response

VILLAGE = "511702005001"  # 双鱼湖社区 → 凤北街道纪工委 (XZ-511702005)
TOWN_UNIT = "XZ-511702005"


async def citizen(client: AsyncClient, name: str) -> dict[str, str]:
    body = (
        await client.post(
            "/api/v1/auth/wechat-login", json={"code": f"ok-{name}", "scene": VILLAGE}
        )
    ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


async def file_case(client: AsyncClient, h: dict[str, str], **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "item_code": "0101",
        "region_code": VILLAGE,
        "content": "村里的财务收支好几个季度都没有公开了，公示栏一直是空的。",
        "anonymous": False,
        "contact_name": "李大姐",
        "contact_phone": "13900001111",
    }
    body.update(kw)
    resp = await client.post("/api/v1/complaints", headers=h, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def act(
    client: AsyncClient, h: dict[str, str], cid: str, action: str, version: int, **kw: Any
) -> Response:
    return await client.post(
        f"/api/v1/staff/complaints/{cid}/actions/{action}",
        headers=h,
        json={"expected_version": version, **kw},
    )


async def case(client: AsyncClient, h: dict[str, str], cid: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/staff/complaints/{cid}", headers=h)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]
