"""A small WeChat API double on loopback: real HTTP, scriptable answers.

Codes starting with ``ok-`` log in as ``openid-<rest>``; ``union-`` adds a
unionid; ``bad-`` answers errcode 40029; ``slow-`` sleeps past the client
timeout; ``busy-`` answers errcode -1; ``boom-`` answers HTTP 500.

Content security (msgSecCheck / mediaCheckAsync v2): a text containing
``RISKY_MARK`` is risky, ``REVIEW_MARK`` review, anything else pass. Media
verdicts come from ``media_verdicts`` (a queue; "pass" when empty), and each
submission queues the wxa_media_check push WeChat would send in
``pending_pushes``; ``signed_push`` signs one with the message token the way
WeChat does, and ``push_url`` (when set) has the fake POST it there itself.
``content_down`` makes both APIs answer HTTP 500. ``on_text_check``, when
set, is called (on the server's thread) as each msgSecCheck arrives, before
the answer (``on_media_check`` likewise for each mediaCheckAsync submission,
``on_subscribe`` for each subscribe message sent, ``on_login`` for each login
code): a test looks at the world while the app waits for WeChat.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from PIL import Image

from app.wechat.rules import subscribe_errors

RISKY_MARK = "#risky#"
REVIEW_MARK = "#review#"
LABELS = {"pass": 100, "review": 20002, "risky": 20001}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


class FakeWeChat:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.token_counter = 0
        self.subscribe_failures = 0
        self.subscribe_delay = 0.0  # seconds each subscribe send takes to answer
        self.slow_seconds = 5.0
        # (body, content type) getwxacodeunlimit answers instead of a PNG, when set.
        self.wxacode_reply: tuple[bytes, str] | None = None
        # URL Link / URL Scheme answers: "ok", "down" (HTTP 500) or an errcode.
        self.link_mode: str | int = "ok"
        self.link_counter = 0
        self.content_down = False
        self.on_text_check: Callable[[], None] | None = None
        self.on_media_check: Callable[[], None] | None = None
        self.on_subscribe: Callable[[], None] | None = None
        self.on_login: Callable[[], None] | None = None
        self.media_verdicts: list[str] = []
        self.media_checks: dict[str, dict[str, Any]] = {}
        self.pending_pushes: list[dict[str, Any]] = []
        self.push_url: str | None = None
        self.push_token = ""
        self.push_delay = 1.0  # WeChat answers in seconds to minutes, never at once
        self.fetch_media = False  # GET each media_url, as WeChat does, before answering
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, payload: dict[str, Any], status: int = 200) -> None:
                self._send(status, json.dumps(payload).encode())

            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.requests.append(("GET", url.path, q))
                if url.path == "/sns/jscode2session":
                    outer._login(self, q)
                else:
                    self._json({"errcode": 404, "errmsg": "unknown"}, 404)

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.requests.append(("POST", url.path, {**q, **body}))
                if url.path == "/cgi-bin/stable_token":
                    outer.token_counter += 1
                    self._json({"access_token": f"token-{outer.token_counter}", "expires_in": 7200})
                elif url.path == "/wxa/getwxacodeunlimit":
                    if not q.get("access_token", "").startswith("token-"):
                        self._json({"errcode": 40001, "errmsg": "invalid credential"})
                    elif outer.wxacode_reply is not None:  # a misbehaving WeChat
                        self._send(200, *outer.wxacode_reply)
                    else:
                        self._send(200, _png(), "image/png")
                elif url.path in ("/wxa/generate_urllink", "/wxa/generatescheme"):
                    outer._link(self, url.path, q, body)
                elif url.path in ("/wxa/msg_sec_check", "/wxa/media_check_async"):
                    if not q.get("access_token", "").startswith("token-"):
                        self._json({"errcode": 40001, "errmsg": "invalid credential"})
                    elif outer.content_down:
                        self._send(500, b"down", "text/plain")
                    elif url.path == "/wxa/msg_sec_check":
                        if outer.on_text_check is not None:
                            outer.on_text_check()
                        self._json(outer._text_verdict(body))
                    else:
                        if outer.on_media_check is not None:
                            outer.on_media_check()
                        self._json(outer._media_submit(body))
                elif url.path == "/cgi-bin/message/subscribe/send":
                    if outer.on_subscribe is not None:
                        outer.on_subscribe()
                    time.sleep(outer.subscribe_delay)
                    refused = subscribe_errors(body.get("data") or {})
                    if refused:  # as real WeChat does: the field rules are checked
                        self._json({"errcode": 47003, "errmsg": "argument invalid! " + refused[0]})
                    elif outer.subscribe_failures > 0:
                        outer.subscribe_failures -= 1
                        self._json({"errcode": -1, "errmsg": "system busy"})
                    else:
                        self._json({"errcode": 0, "errmsg": "ok"})
                else:
                    self._json({"errcode": 404, "errmsg": "unknown"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _login(self, handler: Any, q: dict[str, str]) -> None:
        if self.on_login is not None:
            self.on_login()
        code = q.get("js_code", "")
        if q.get("appid") != "wx-test-app" or q.get("secret") != "wx-test-secret":
            handler._json({"errcode": 40013, "errmsg": "invalid appid"})
        elif code.startswith("ok-"):
            handler._json({"openid": f"openid-{code[3:]}", "session_key": "sk"})
        elif code.startswith("union-"):
            handler._json(
                {
                    "openid": f"openid-{code[6:]}",
                    "unionid": f"unionid-{code[6:]}",
                    "session_key": "sk",
                }
            )
        elif code.startswith("bad-"):
            handler._json({"errcode": 40029, "errmsg": "invalid code"})
        elif code.startswith("slow-"):
            time.sleep(self.slow_seconds)
            handler._json({"openid": "late", "session_key": "sk"})
        elif code.startswith("busy-"):
            handler._json({"errcode": -1, "errmsg": "system error"})
        elif code.startswith("boom-"):
            handler._send(500, b"oops", "text/plain")
        else:
            handler._json({"errcode": 40029, "errmsg": "invalid code"})

    def _link(self, handler: Any, path: str, q: dict[str, str], body: dict[str, Any]) -> None:
        """Links like WeChat's: an expiry time is required, one new link per call."""
        if self.link_mode == "down":
            handler._send(500, b"oops", "text/plain")
            return
        if not q.get("access_token", "").startswith("token-"):
            handler._json({"errcode": 40001, "errmsg": "invalid credential"})
            return
        if isinstance(self.link_mode, int):
            handler._json({"errcode": self.link_mode, "errmsg": "refused"})
            return
        expire = int(body.get("expire_time") or 0)
        if body.get("expire_type") != 0 or expire <= 0:
            handler._json({"errcode": 40097, "errmsg": "invalid args"})
            return
        self.link_counter += 1
        if path == "/wxa/generate_urllink":
            handler._json({"errcode": 0, "url_link": f"https://wxaurl.cn/fake{self.link_counter}"})
        else:
            link = f"weixin://dl/business/?t=fake{self.link_counter}"
            handler._json({"errcode": 0, "openlink": link})

    @staticmethod
    def _text_verdict(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("version") != 2 or not body.get("openid") or "content" not in body:
            return {"errcode": 47001, "errmsg": "data format error"}
        content = str(body["content"])
        suggest = (
            "risky" if RISKY_MARK in content else "review" if REVIEW_MARK in content else "pass"
        )
        return {
            "errcode": 0,
            "errmsg": "ok",
            "result": {"suggest": suggest, "label": LABELS[suggest]},
            "detail": [
                {
                    "strategy": "content_model",
                    "errcode": 0,
                    "suggest": suggest,
                    "label": LABELS[suggest],
                    "prob": 90,
                }
            ],
            "trace_id": uuid.uuid4().hex,
        }

    def _media_submit(self, body: dict[str, Any]) -> dict[str, Any]:
        if (
            body.get("version") != 2
            or not body.get("openid")
            or body.get("media_type") not in (1, 2)
            or not str(body.get("media_url", "")).startswith("http")
        ):
            return {"errcode": 47001, "errmsg": "data format error"}
        trace = uuid.uuid4().hex
        suggest = self.media_verdicts.pop(0) if self.media_verdicts else "pass"
        self.media_checks[trace] = {**body, "suggest": suggest}
        if self.fetch_media:
            try:
                with urllib.request.urlopen(str(body["media_url"]), timeout=5) as got:
                    self.media_checks[trace]["fetched"] = got.read()
            except OSError as exc:
                self.media_checks[trace]["fetched"] = repr(exc)
        event = self.push_event(trace, suggest)
        self.pending_pushes.append(event)
        if self.push_url:
            threading.Thread(target=self._push_now, args=(event,), daemon=True).start()
        return {"errcode": 0, "errmsg": "ok", "trace_id": trace}

    @staticmethod
    def push_event(trace_id: str, suggest: str) -> dict[str, Any]:
        """The wxa_media_check event WeChat pushes for one submission."""
        return {
            "ToUserName": "gh_test",
            "FromUserName": "o-platform",
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "wxa_media_check",
            "appid": "wx-test-app",
            "trace_id": trace_id,
            "version": 2,
            "detail": [
                {
                    "strategy": "content_model",
                    "errcode": 0,
                    "suggest": suggest,
                    "label": LABELS.get(suggest, 100),
                    "prob": 90,
                }
            ],
            "errcode": 0,
            "errmsg": "ok",
            "result": {"suggest": suggest, "label": LABELS.get(suggest, 100)},
        }

    @staticmethod
    def signed_push(
        event: dict[str, Any], token: str, *, fmt: str = "json"
    ) -> tuple[dict[str, str], bytes, str]:
        """(query, body, content type) of the push as WeChat signs it:
        sha1 over the sorted token, timestamp and nonce."""
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
        query = {"signature": signature, "timestamp": timestamp, "nonce": nonce}
        if fmt == "xml":
            return query, _xml(event).encode(), "text/xml"
        return query, json.dumps(event).encode(), "application/json"

    def _push_now(self, event: dict[str, Any]) -> None:
        assert self.push_url is not None
        time.sleep(self.push_delay)
        query, body, ctype = self.signed_push(event, self.push_token)
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        req = urllib.request.Request(
            f"{self.push_url}?{qs}", data=body, headers={"Content-Type": ctype}, method="POST"
        )
        # On failure the app resubmits when no verdict arrives.
        with contextlib.suppress(OSError):
            urllib.request.urlopen(req, timeout=5).close()

    def start(self) -> FakeWeChat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [p for _, p, _ in self.requests]


def _xml(value: Any, tag: str = "xml") -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(v, k) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, list):
        return "".join(_xml(v, tag) for v in value)
    if isinstance(value, str):
        return f"<{tag}><![CDATA[{value}]]></{tag}>"
    return f"<{tag}>{value}</{tag}>"
