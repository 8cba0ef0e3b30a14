"""A built-in WeChat stand-in, for the embedded default only: ``scripts/run.sh``
becomes walkable without a mini-program account (log in as a demo resident,
file, follow the case, see the notices the worker sends).

It answers the few WeChat server APIs the service calls, under
``/dev/wechat`` on this same server (``YDT_WECHAT_API_BASE`` points here):

* ``GET /sns/jscode2session``: any code of letters, digits, ``-`` and ``_``
  logs in, always as the same resident for the same code (``demo-zhang`` is
  ``standin-demo-zhang``), so a walkthrough can log in again;
* ``POST /cgi-bin/stable_token``: an access token;
* ``POST /cgi-bin/message/subscribe/send``: checked against WeChat's field
  rules (app/wechat/rules.py), then kept in memory;
* ``POST /wxa/getwxacodeunlimit``: a QR code of the village's web page;
* ``GET /messages?openid=``: what was "sent", newest last (not a WeChat API:
  what a resident's phone would have shown).

Settings refuse it outside the embedded default (PostgreSQL, S3, production,
a public URL that is not loopback): see ``Settings._wechat_standin``.
"""

from __future__ import annotations

import io
import re
import secrets
from collections import deque
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from app.core import urls
from app.wechat.rules import subscribe_errors

PREFIX = "/dev/wechat"
OPENID_PREFIX = "standin-"
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEPT = 500

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _messages(request: Request) -> deque[dict[str, Any]]:
    box: deque[dict[str, Any]] | None = getattr(request.app.state, "standin_messages", None)
    if box is None:
        box = deque(maxlen=KEPT)
        request.app.state.standin_messages = box
    return box


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@router.get("/sns/jscode2session")
async def jscode2session(
    request: Request,
    appid: Annotated[str, Query(max_length=64)] = "",
    secret: Annotated[str, Query(max_length=128)] = "",
    js_code: Annotated[str, Query(max_length=128)] = "",
) -> JSONResponse:
    settings = request.app.state.settings
    expected = settings.wechat_secret.get_secret_value() if settings.wechat_secret else None
    if appid != settings.wechat_appid or not expected or secret != expected:
        return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
    if not _CODE.fullmatch(js_code):
        return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
    return JSONResponse(
        {"openid": OPENID_PREFIX + js_code, "session_key": secrets.token_urlsafe(16)}
    )


@router.post("/cgi-bin/stable_token")
async def stable_token() -> JSONResponse:
    return JSONResponse({"access_token": "standin-" + secrets.token_hex(8), "expires_in": 7200})


@router.post("/cgi-bin/message/subscribe/send")
async def subscribe_send(request: Request) -> JSONResponse:
    body = await _json_body(request)
    raw = body.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser.startswith(OPENID_PREFIX):
        return JSONResponse({"errcode": 40003, "errmsg": "invalid openid"})
    refused = subscribe_errors(data)
    if refused:
        return JSONResponse({"errcode": 47003, "errmsg": "argument invalid! " + refused[0]})
    _messages(request).append(
        {
            "touser": touser,
            "template_id": str(body.get("template_id", "")),
            "page": str(body.get("page", "")),
            "data": {k: str(v["value"]) for k, v in data.items()},
            "received_at": request.app.state.clock.now().isoformat(),
        }
    )
    return JSONResponse({"errcode": 0, "errmsg": "ok"})


@router.post("/wxa/getwxacodeunlimit")
async def wxacode(request: Request) -> Response:
    """A mini-program code cannot open anything without WeChat: the stand-in's
    code carries the village's web page instead, which a phone camera opens."""
    body = await _json_body(request)
    scene = str(body.get("scene", ""))[:32]
    buf = io.BytesIO()
    target = urls.village_page(request.app.state.settings, scene)
    segno.make(target, error="m").save(buf, kind="png", scale=8, border=4)
    return Response(buf.getvalue(), media_type="image/png")


@router.get("/messages")
async def messages(
    request: Request, openid: Annotated[str | None, Query(max_length=80)] = None
) -> JSONResponse:
    kept = [m for m in _messages(request) if openid is None or m["touser"] == openid]
    return JSONResponse({"items": kept})
