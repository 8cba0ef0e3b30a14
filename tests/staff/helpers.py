"""Staff sign-in from chosen addresses: the test client sits behind a trusted
proxy (127.0.0.1), so X-Forwarded-For names the client."""

from __future__ import annotations

from ipaddress import ip_network

from fastapi import FastAPI
from httpx import AsyncClient, Response

from tests.factories import PASSWORD

LOGIN = "/api/v1/staff/auth/login"
REFRESH = "/api/v1/staff/auth/refresh"
LOGOUT = "/api/v1/staff/auth/logout"
FAILED = {"error": "unauthorized", "detail": "用户名或密码错误，或尝试次数过多，请稍后再试"}


def trust_local_proxy(app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"trusted_proxies": [ip_network("127.0.0.1/32")]}
    )


async def attempt(
    client: AsyncClient, username: str, password: str = PASSWORD, *, ip: str = "198.51.100.1"
) -> Response:
    return await client.post(
        LOGIN,
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
    )


def bearer(resp: Response) -> dict[str, str]:
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}
