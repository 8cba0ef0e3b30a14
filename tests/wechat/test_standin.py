"""The built-in WeChat stand-in: on for the embedded default's demo, impossible
to enable anywhere it could let strangers log in (issue 15, item 6)."""

from __future__ import annotations

import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError

from app.core.config import Settings
from app.main import create_app
from tests.conftest import make_settings


def plain(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[arg-type]


def test_on_by_default_only_for_the_embedded_demo() -> None:
    demo = plain()
    assert demo.wechat_standin is True
    assert demo.wechat_api_base == "http://127.0.0.1:8000/dev/wechat"
    assert demo.wechat_appid and demo.wechat_templates["accepted"] == "standin-accepted"
    assert plain(wechat_appid="wx123", wechat_secret="s").wechat_standin is False
    assert plain(public_base_url="https://ydt.example.gov.cn").wechat_standin is False
    assert plain(database_url="postgresql+asyncpg://ydt@db/ydt").wechat_standin is False
    assert make_settings().wechat_standin is False  # tests use their own fake WeChat


def test_it_switches_no_content_security_on() -> None:
    """The stand-in judges nothing (no msgSecCheck, no mediaCheckAsync): with
    the appid it fills in counting as "WeChat configured", every demo text was
    deferred as unreachable and every upload waited for a verdict forever."""
    assert plain().content_security is False
    assert plain(wechat_appid="wx123", wechat_secret="s").content_security is True
    assert (
        plain(wechat_appid="wx123", wechat_secret="s", wechat_standin=True).content_security
        is False
    )


@pytest.mark.parametrize(
    "unsafe",
    [
        {"database_url": "postgresql+asyncpg://ydt@db/ydt"},
        {"storage": "s3"},
        {"public_base_url": "https://ydt.example.gov.cn"},
        {"public_base_url": "http://192.168.1.20:8000"},
        {"wechat_api_base": "https://wx-proxy.example.com"},
        {"env": "production", "jwt_secret": "x" * 40},
    ],
)
def test_enabling_it_outside_the_embedded_default_refuses_to_start(unsafe: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="YDT_WECHAT_STANDIN is refused"):
        plain(wechat_standin=True, **unsafe)


async def test_it_answers_like_wechat_and_checks_message_fields() -> None:
    settings = make_settings(wechat_standin=True)
    app = create_app(settings, configure_logs=False)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        base = "/dev/wechat"
        creds = {"appid": settings.wechat_appid, "secret": "standin-secret"}
        ok = await http.get(f"{base}/sns/jscode2session", params={**creds, "js_code": "demo-li"})
        assert ok.json()["openid"] == "standin-demo-li"
        bad = await http.get(f"{base}/sns/jscode2session", params={**creds, "js_code": "a b"})
        assert bad.json()["errcode"] == 40029
        wrong = await http.get(
            f"{base}/sns/jscode2session", params={"appid": "x", "secret": "y", "js_code": "a"}
        )
        assert wrong.json()["errcode"] == 40013
        message = {
            "touser": "standin-demo-li",
            "template_id": "standin-accepted",
            "data": {"character_string1": {"value": "DZ20261124-000001"}},
        }
        sent = await http.post(f"{base}/cgi-bin/message/subscribe/send", json=message)
        assert sent.json()["errcode"] == 0
        too_long = {**message, "data": {"thing2": {"value": "一" * 21}}}
        refused = await http.post(f"{base}/cgi-bin/message/subscribe/send", json=too_long)
        assert refused.json()["errcode"] == 47003
        got = (await http.get(f"{base}/messages", params={"openid": "standin-demo-li"})).json()
        assert [m["data"] for m in got["items"]] == [{"character_string1": "DZ20261124-000001"}]
        # Not part of the API contract: absent from the OpenAPI document.
        assert not any(p.startswith(base) for p in app.openapi()["paths"])
    plain_app = create_app(make_settings(), configure_logs=False)
    async with AsyncClient(transport=ASGITransport(app=plain_app), base_url="http://t") as http:
        assert (await http.get("/dev/wechat/messages")).status_code == 404
