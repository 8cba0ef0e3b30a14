"""A small WeChat API double on loopback: real HTTP, scriptable answers.

Codes starting with ``ok-`` log in as ``openid-<rest>``; ``union-`` adds a
unionid; ``bad-`` answers errcode 40029; ``slow-`` sleeps past the client
timeout; ``busy-`` answers errcode -1; ``boom-`` answers HTTP 500.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from PIL import Image

from app.wechat.rules import subscribe_errors


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


class FakeWeChat:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.token_counter = 0
        self.subscribe_failures = 0
        self.slow_seconds = 2.0
        # (body, content type) getwxacodeunlimit answers instead of a PNG, when set.
        self.wxacode_reply: tuple[bytes, str] | None = None
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
                elif url.path == "/cgi-bin/message/subscribe/send":
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

    def start(self) -> FakeWeChat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [p for _, p, _ in self.requests]
