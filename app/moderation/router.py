"""WeChat's message push (消息推送) for content security: the wxa_media_check event.

WeChat signs each call with sha1 over the sorted (token, timestamp, nonce),
the token being the one configured for the push (``YDT_WECHAT_MESSAGE_TOKEN``).
GET with ``echostr`` is the handshake when the URL is configured; POST carries
the event, as JSON or XML (plaintext or compatible mode; the encrypted "safe
mode" is not supported). A bad signature is 403 and changes nothing; an
event we did not ask for, or an unknown trace id, is acknowledged and
ignored, so WeChat does not keep retrying; a malformed body is 400.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from app.core.boundary import body_limit
from app.core.config import Settings
from app.core.deps import ClockDep, SessionDep, SettingsDep
from app.core.errors import BadRequest, Forbidden
from app.moderation import service
from app.wechat.client import signature_valid

logger = logging.getLogger(__name__)
router = APIRouter(tags=["wechat"])

MAX_PUSH_BYTES = 64 * 1024  # a push is a few hundred bytes
SigParam = Annotated[str, Query(max_length=64)]
EchoParam = Annotated[str, Query(max_length=128)]


class BadSignature(Forbidden):
    code = "bad_signature"


def _verify(settings: Settings, signature: str, timestamp: str, nonce: str) -> None:
    token = settings.wechat_message_token
    if not signature_valid(
        token.get_secret_value() if token else None, signature, timestamp, nonce
    ):
        logger.warning("wechat push refused: bad signature")
        raise BadSignature("签名校验失败")


@router.get(
    "/wechat/events",
    response_class=PlainTextResponse,
    responses={403: {"description": "signature does not verify"}},
)
async def handshake(
    settings: SettingsDep,
    signature: SigParam = "",
    timestamp: SigParam = "",
    nonce: SigParam = "",
    echostr: EchoParam = "",
) -> PlainTextResponse:
    """WeChat checks the push URL by sending ``echostr`` back and forth."""
    _verify(settings, signature, timestamp, nonce)
    return PlainTextResponse(echostr)


def _xml_dict(node: Element) -> Any:
    children = list(node)
    if not children:
        return (node.text or "").strip()
    return {child.tag: _xml_dict(child) for child in children}


def parse_push(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        body = json.loads(stripped)
    elif stripped.startswith("<"):
        body = _xml_dict(SafeET.fromstring(stripped, forbid_dtd=True))
    else:
        raise ValueError("neither JSON nor XML")
    if not isinstance(body, dict):
        raise ValueError("not an object")
    return body


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal() and len(value) < 12:
        return int(value)
    return default


@router.post(
    "/wechat/events",
    response_class=PlainTextResponse,
    responses={
        400: {"description": "not a WeChat push (malformed JSON or XML)"},
        403: {"description": "signature does not verify"},
        413: {"description": "body over 64 KB"},
    },
)
@body_limit(lambda s: MAX_PUSH_BYTES, signed_in=False)
async def push(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    signature: SigParam = "",
    timestamp: SigParam = "",
    nonce: SigParam = "",
) -> PlainTextResponse:
    """A content security verdict pushed by WeChat (Event ``wxa_media_check``)."""
    _verify(settings, signature, timestamp, nonce)
    try:
        body = parse_push(await request.body())
    except (ValueError, SyntaxError, DefusedXmlException, RecursionError) as exc:
        raise BadRequest("无法识别的推送内容") from exc
    if body.get("MsgType") != "event" or body.get("Event") != "wxa_media_check":
        return PlainTextResponse("success")  # other pushes are not ours to handle
    trace_id = body.get("trace_id")
    found = body.get("result")
    result: dict[str, Any] = found if isinstance(found, dict) else {}
    if not isinstance(trace_id, str) or not 0 < len(trace_id) <= 128:
        raise BadRequest("推送缺少 trace_id")
    outcome = await service.apply_push(
        session,
        trace_id=trace_id,
        suggest=result.get("suggest") if isinstance(result.get("suggest"), str) else None,
        label=_int(result.get("label"), 0) or None,
        errcode=_int(body.get("errcode", 0), -1),
        now=clock.now(),
    )
    logger.info("wechat media check push", extra={"outcome": outcome})
    return PlainTextResponse("success")
