"""WeChat server APIs over httpx: login (jscode2session), access token, QR codes,
subscribe messages, content security (msgSecCheck, mediaCheckAsync v2) and links
that open the mini-program from a browser (URL Link, URL Scheme).

Every call has a timeout; WeChat being slow or down is a 503 for our caller,
an invalid login code a 401, both with a Chinese message a resident can act on.
The access token is cached in the shared store so all workers reuse one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app.core.config import Settings
from app.core.errors import AppError, BadGateway, ServiceUnavailable, Unauthorized
from app.core.shared import SharedStore

logger = logging.getLogger(__name__)

INVALID_CODE_ERRORS = {40029, 40163, 40125, 41008}
_TOKEN_KEY = "wechat:access_token"


class WeChatUnavailable(ServiceUnavailable):
    code = "wechat_unavailable"


class WeChatBadResponse(BadGateway):
    """WeChat answered, but not with what the API promises (e.g. a QR code that is no image)."""

    code = "wechat_bad_response"


class WeChatRefused(WeChatUnavailable):
    """WeChat answered with an error code (e.g. this mini-program may not make URL
    Links): another kind of request may still work, a retry will not."""

    code = "wechat_refused"


class WeChatLoginRejected(Unauthorized):
    code = "wechat_login_rejected"


class WeChatNotConfigured(AppError):
    status_code, code = 503, "wechat_not_configured"


@dataclass(frozen=True, slots=True)
class Session:
    openid: str
    unionid: str | None


class WeChatClient:
    def __init__(
        self, settings: Settings, store: SharedStore, http: httpx.AsyncClient | None = None
    ) -> None:
        self._appid = settings.wechat_appid
        self._secret = settings.wechat_secret.get_secret_value() if settings.wechat_secret else None
        self._http = http or httpx.AsyncClient(
            base_url=settings.wechat_api_base.rstrip("/"),
            timeout=httpx.Timeout(settings.wechat_timeout_seconds),
        )
        self._store = store
        self.timeout = settings.wechat_timeout_seconds

    @property
    def configured(self) -> bool:
        return bool(self._appid and self._secret)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _require(self) -> tuple[str, str]:
        if not self._appid or not self._secret:
            raise WeChatNotConfigured("微信登录未配置（YDT_WECHAT_APPID / YDT_WECHAT_SECRET）")
        return self._appid, self._secret

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            resp = await self._http.request(method, url, **kw)
        except httpx.TimeoutException as exc:
            logger.warning("wechat timeout", extra={"url": url})
            raise WeChatUnavailable("微信服务响应超时，请稍后重试") from exc
        except httpx.HTTPError as exc:
            logger.warning("wechat unreachable", extra={"url": url, "error": repr(exc)})
            raise WeChatUnavailable("暂时无法连接微信服务，请稍后重试") from exc
        if resp.status_code >= 500:
            raise WeChatUnavailable("微信服务暂时不可用，请稍后重试")
        return resp

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any]:
        try:
            body = resp.json()
        except (json.JSONDecodeError, ValueError) as exc:
            raise WeChatUnavailable("微信服务返回了无法识别的内容") from exc
        if not isinstance(body, dict):
            raise WeChatUnavailable("微信服务返回了无法识别的内容")
        return body

    async def code_to_session(self, code: str) -> Session:
        appid, secret = self._require()
        resp = await self._request(
            "GET",
            "/sns/jscode2session",
            params={
                "appid": appid,
                "secret": secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        body = self._json(resp)
        errcode = int(body.get("errcode") or 0)
        if errcode in INVALID_CODE_ERRORS:
            raise WeChatLoginRejected("微信登录凭证无效或已过期，请重新进入小程序")
        if errcode == 40226:
            raise WeChatLoginRejected("该微信账号存在风险，暂时无法登录")
        if errcode != 0 or not body.get("openid"):
            logger.warning(
                "jscode2session failed", extra={"errcode": errcode, "errmsg": body.get("errmsg")}
            )
            raise WeChatUnavailable("微信服务繁忙，请稍后重试")
        return Session(openid=str(body["openid"]), unionid=body.get("unionid") or None)

    async def access_token(self, *, now: datetime, force_refresh: bool = False) -> str:
        if not force_refresh:
            cached = await self._store.get(_TOKEN_KEY, now=now)
            if cached:
                return cached
        appid, secret = self._require()
        resp = await self._request(
            "POST",
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": appid,
                "secret": secret,
                "force_refresh": force_refresh,
            },
        )
        body = self._json(resp)
        token = body.get("access_token")
        if not token:
            logger.error("access token failed", extra={"errcode": body.get("errcode")})
            raise WeChatUnavailable("获取微信接口凭证失败，请稍后重试")
        ttl = max(60, int(body.get("expires_in", 7200)) - 300)  # refresh before expiry
        await self._store.set(_TOKEN_KEY, str(token), ttl_seconds=ttl, now=now)
        return str(token)

    async def wxacode(self, *, scene: str, page: str, now: datetime) -> bytes:
        """The mini-program code (getwxacodeunlimit) as image bytes."""
        for attempt in range(2):
            token = await self.access_token(now=now, force_refresh=attempt > 0)
            resp = await self._request(
                "POST",
                "/wxa/getwxacodeunlimit",
                params={"access_token": token},
                json={"scene": scene, "page": page, "check_path": False, "width": 430},
            )
            if resp.headers.get("content-type", "").startswith("image/"):
                return resp.content
            try:
                body = self._json(resp)
            except WeChatUnavailable as exc:
                raise WeChatBadResponse("微信返回的小程序码无法识别，请稍后重试") from exc
            if int(body.get("errcode") or 0) in (40001, 42001) and attempt == 0:
                continue  # token expired early: refresh once
            raise WeChatUnavailable(f"生成小程序码失败（{body.get('errcode')}）")
        raise WeChatUnavailable("生成小程序码失败")

    async def _post_api(
        self, url: str, payload: dict[str, Any], *, now: datetime
    ) -> dict[str, Any]:
        """POST a JSON API with the access token; an expired token is refreshed once."""
        for attempt in range(2):
            token = await self.access_token(now=now, force_refresh=attempt > 0)
            resp = await self._request("POST", url, params={"access_token": token}, json=payload)
            body = self._json(resp)
            errcode = int(body.get("errcode") or 0)
            if errcode in (40001, 42001) and attempt == 0:
                continue
            if errcode != 0:
                logger.warning("wechat api refused", extra={"url": url, "errcode": errcode})
                raise WeChatRefused(f"微信接口暂不可用（{errcode}）")
            return body
        raise WeChatUnavailable("微信接口暂不可用")

    async def url_link(
        self, *, page: str, query: str, env_version: str, expire_at: datetime, now: datetime
    ) -> str:
        """urllink.generate: an https link (wxaurl.cn) that opens the mini-program
        from a browser. WeChat caps its life at 30 days, and the first WeChat
        user who opens it owns it (others are refused), so callers cache a link
        per browser, not per village."""
        body = await self._post_api(
            "/wxa/generate_urllink",
            {
                "path": page,
                "query": query,
                "env_version": env_version,
                "expire_type": 0,
                "expire_time": int(expire_at.timestamp()),
            },
            now=now,
        )
        link = body.get("url_link")
        if not isinstance(link, str) or not link.startswith("https://"):
            raise WeChatBadResponse("微信返回的小程序链接无法识别")
        return link

    async def url_scheme(
        self, *, page: str, query: str, env_version: str, expire_at: datetime, now: datetime
    ) -> str:
        """urlscheme.generate (/wxa/generatescheme): a ``weixin://dl/business/``
        link, the same rules as a URL Link; for mini-programs that may not
        issue URL Links."""
        body = await self._post_api(
            "/wxa/generatescheme",
            {
                "jump_wxa": {"path": page, "query": query, "env_version": env_version},
                "is_expire": True,
                "expire_type": 0,
                "expire_time": int(expire_at.timestamp()),
            },
            now=now,
        )
        link = body.get("openlink")
        if not isinstance(link, str) or not link.startswith("weixin://"):
            raise WeChatBadResponse("微信返回的小程序链接无法识别")
        return link


class SubscribeRefused(WeChatUnavailable):
    """The resident has not (or no longer) subscribed: retrying will not help."""

    code = "wechat_subscribe_refused"


NON_RETRYABLE_SUBSCRIBE = {43101, 47003, 40003, 40037}


async def send_subscribe(
    client: WeChatClient,
    *,
    openid: str,
    template_id: str,
    page: str,
    data: dict[str, str],
    now: datetime,
) -> None:
    """message/subscribe/send; refreshes the access token once if it expired."""
    for attempt in range(2):
        token = await client.access_token(now=now, force_refresh=attempt > 0)
        resp = await client._request(
            "POST",
            "/cgi-bin/message/subscribe/send",
            params={"access_token": token},
            json={
                "touser": openid,
                "template_id": template_id,
                "page": page,
                "data": {k: {"value": v} for k, v in data.items()},
                "miniprogram_state": "formal",
                "lang": "zh_CN",
            },
        )
        body = client._json(resp)
        errcode = int(body.get("errcode") or 0)
        if errcode == 0:
            return
        if errcode in (40001, 42001) and attempt == 0:
            continue
        if errcode in NON_RETRYABLE_SUBSCRIBE:
            raise SubscribeRefused(f"订阅消息无法发送（{errcode}）")
        raise WeChatUnavailable(f"订阅消息发送失败（{errcode} {body.get('errmsg', '')}）")


# -- content security (msgSecCheck / mediaCheckAsync v2) --------------------

# Scenes of content security v2: 1 资料 (profile), 2 评论 (comment), 3 论坛
# (forum), 4 社交日志 (social log). A filing or supplement is a forum post, a
# rating's comment a comment.
SCENE_COMMENT = 2
SCENE_FORUM = 3
MEDIA_AUDIO, MEDIA_IMAGE = 1, 2
# The resident has not opened the mini-program in the last two hours (or the
# openid is unknown): WeChat will not judge content for them, retrying won't help.
OPENID_REFUSED = {61010, 40003}


class ContentCheckRefused(WeChatUnavailable):
    """WeChat will not check this content for this openid: staff must look."""

    code = "wechat_content_check_refused"


@dataclass(frozen=True, slots=True)
class TextVerdict:
    suggest: str  # pass | review | risky
    label: int | None
    trace_id: str | None


_SUGGESTS = frozenset({"pass", "review", "risky"})


def _errcode(body: dict[str, Any]) -> int:
    raw = body.get("errcode") or 0
    if isinstance(raw, bool):
        return -1
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):
        return -1


async def _content_call(
    client: WeChatClient, path: str, payload: dict[str, Any], *, now: datetime, wait_seconds: float
) -> dict[str, Any]:
    """POST a content-security call; refreshes the access token once if it expired."""
    for attempt in range(2):
        token = await client.access_token(now=now, force_refresh=attempt > 0)
        resp = await client._request(
            "POST", path, params={"access_token": token}, json=payload, timeout=wait_seconds
        )
        body = client._json(resp)
        errcode = _errcode(body)
        if errcode in (40001, 42001) and attempt == 0:
            continue
        if errcode == 87014:  # v1's "risky content" answer, still given by some gateways
            return {"result": {"suggest": "risky", "label": None}}
        if errcode in OPENID_REFUSED:
            raise ContentCheckRefused(f"微信内容安全检测不受理（{errcode}）")
        if errcode != 0:
            raise WeChatUnavailable(f"微信内容安全检测失败（{errcode}）")
        return body
    raise WeChatUnavailable("微信内容安全检测失败")


async def msg_sec_check(
    client: WeChatClient,
    *,
    openid: str,
    content: str,
    scene: int,
    now: datetime,
    wait_seconds: float,
) -> TextVerdict:
    """msgSecCheck v2: WeChat's synchronous verdict on a resident's text."""
    body = await _content_call(
        client,
        "/wxa/msg_sec_check",
        {"openid": openid, "scene": scene, "version": 2, "content": content},
        now=now,
        wait_seconds=wait_seconds,
    )
    result = body.get("result")
    suggest = result.get("suggest") if isinstance(result, dict) else None
    if suggest not in _SUGGESTS:
        raise WeChatUnavailable("微信内容安全检测返回了无法识别的结果")
    assert isinstance(result, dict)
    label = result.get("label")
    trace = body.get("trace_id")
    return TextVerdict(
        suggest=str(suggest),
        label=label if isinstance(label, int) and not isinstance(label, bool) else None,
        trace_id=str(trace)[:128] if trace else None,
    )


async def media_check_async(
    client: WeChatClient,
    *,
    openid: str,
    media_url: str,
    media_type: int,
    scene: int,
    now: datetime,
) -> str:
    """mediaCheckAsync v2: submit a link WeChat fetches; the verdict is pushed to
    the message server (wxa_media_check) within 30 minutes, keyed by the trace id
    returned here."""
    body = await _content_call(
        client,
        "/wxa/media_check_async",
        {
            "media_url": media_url,
            "media_type": media_type,
            "version": 2,
            "scene": scene,
            "openid": openid,
        },
        now=now,
        wait_seconds=client.timeout,
    )
    trace = body.get("trace_id")
    if not isinstance(trace, str) or not trace or len(trace) > 128:
        raise WeChatUnavailable("微信内容安全检测未返回任务编号")
    return trace


def message_signature(token: str, timestamp: str, nonce: str) -> str:
    """The signature WeChat puts on calls to the message server:
    sha1 of the token, timestamp and nonce sorted and joined."""
    joined = "".join(sorted([token, timestamp, nonce])).encode()
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - WeChat's protocol prescribes SHA-1


def signature_valid(token: str | None, signature: str, timestamp: str, nonce: str) -> bool:
    if not token or not signature:
        return False
    expected = message_signature(token, timestamp, nonce)
    return hmac.compare_digest(expected, signature.lower().encode("ascii", "ignore").decode())
