"""Which address a request is from: forwarding headers only from trusted proxies."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.core.ratelimit import client_ip, ip_bucket
from tests.conftest import make_settings


def _request(peer: str, headers: list[tuple[str, str]]) -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            "client": (peer, 50000),
        }
    )


PROXIES = "10.0.0.0/8, 127.0.0.1, ::1"


@pytest.mark.parametrize(
    ("proxies", "peer", "headers", "expected"),
    [
        # No proxies configured (the default): headers are ignored.
        ("", "127.0.0.1", [("X-Forwarded-For", "1.2.3.4")], "127.0.0.1"),
        ("", "127.0.0.1", [("X-Real-IP", "1.2.3.4")], "127.0.0.1"),
        # An untrusted peer's headers are ignored.
        (PROXIES, "203.0.113.9", [("X-Forwarded-For", "1.2.3.4")], "203.0.113.9"),
        # A trusted proxy: the right-most address that is not a proxy.
        (PROXIES, "127.0.0.1", [("X-Forwarded-For", "198.51.100.7")], "198.51.100.7"),
        (
            PROXIES,
            "127.0.0.1",
            [("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.2.3")],
            "198.51.100.7",
        ),
        # Several header lines are one list, in order.
        (
            PROXIES,
            "10.0.0.5",
            [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")],
            "198.51.100.7",
        ),
        # Every hop is ours: the left-most is where it came from.
        (PROXIES, "127.0.0.1", [("X-Forwarded-For", "10.9.9.9, 10.1.1.1")], "10.9.9.9"),
        # Garbage stops the walk at the last trusted hop: it cannot rotate the key.
        (PROXIES, "127.0.0.1", [("X-Forwarded-For", "not-an-ip")], "127.0.0.1"),
        (PROXIES, "127.0.0.1", [("X-Forwarded-For", "x, 10.1.1.1")], "10.1.1.1"),
        (PROXIES, "127.0.0.1", [("X-Forwarded-For", "1.2.3.4, \x00")], "127.0.0.1"),
        # Ports and brackets, IPv6 and IPv4-mapped addresses, spelled canonically.
        (PROXIES, "127.0.0.1", [("X-Forwarded-For", "198.51.100.7:4431")], "198.51.100.7"),
        (PROXIES, "::1", [("X-Forwarded-For", "[2001:DB8::0001]:443")], "2001:db8::1"),
        (PROXIES, "127.0.0.1", [("X-Forwarded-For", "::ffff:198.51.100.7")], "198.51.100.7"),
        # X-Real-IP only when there is no X-Forwarded-For.
        (PROXIES, "127.0.0.1", [("X-Real-IP", "198.51.100.8")], "198.51.100.8"),
        (PROXIES, "127.0.0.1", [("X-Real-IP", "bogus")], "127.0.0.1"),
        (
            PROXIES,
            "127.0.0.1",
            [("X-Real-IP", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")],
            "198.51.100.7",
        ),
    ],
)
def test_client_ip(proxies: str, peer: str, headers: list[tuple[str, str]], expected: str) -> None:
    settings = make_settings(trusted_proxies=proxies)
    assert client_ip(_request(peer, headers), settings) == expected


def test_bad_proxy_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        make_settings(trusted_proxies="10.0.0.1/8")


def test_ipv6_is_counted_per_64_and_ipv4_per_address() -> None:
    assert ip_bucket("2001:db8:1:2:aaaa::1") == ip_bucket("2001:db8:1:2:bbbb::9")
    assert ip_bucket("2001:db8:1:2::1") != ip_bucket("2001:db8:1:3::1")
    assert ip_bucket("198.51.100.7") == "198.51.100.7"
    assert ip_bucket("198.51.100.8") != ip_bucket("198.51.100.7")
