"""Shared steps for the resident-site tests."""

from __future__ import annotations

import re

from httpx import AsyncClient, Response

from tests.workflow.helpers import VILLAGE

HOME = f"/q/{VILLAGE}"
OTHER_VILLAGE = "511702005002"


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def post_track(
    client: AsyncClient,
    path: str,
    tracking_no: str,
    query_code: str,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(
        path,
        data={
            "form_token": form_token(page.text),
            "tracking_no": tracking_no,
            "query_code": query_code,
        },
        headers=headers or {},
    )
