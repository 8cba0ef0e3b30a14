"""Fixed-window rate limits over the shared store (all workers count together),
and the one answer to "which address is this request from".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from app.core.config import Settings
from app.core.errors import TooManyRequests
from app.core.shared import SharedStore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


async def enforce(
    store: SharedStore, key: str, *, limit: int, window_seconds: int, now: datetime, what: str
) -> None:
    count, retry_after = await store.hit(key, window_seconds=window_seconds, now=now)
    if count > limit:
        raise TooManyRequests(
            f"{what}过于频繁，请 {retry_after} 秒后再试", headers={"Retry-After": str(retry_after)}
        )


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    limit: int
    window_seconds: int


async def enforce_all(
    store: SharedStore, limits: Sequence[Limit], *, now: datetime, what: str
) -> None:
    """Several limits counted in one round trip; the first one over answers 429.

    Every limit counts the hit, also when another one refuses it (calls to
    ``enforce`` in a row stopped counting at the first refusal)."""
    counted = await store.hit_many([(x.key, x.window_seconds) for x in limits], now=now)
    judge(limits, counted, what=what)


def judge(limits: Sequence[Limit], counted: Sequence[tuple[int, int]], *, what: str) -> None:
    """429 for the first limit over, given each one's (count, seconds left)."""
    for x, (count, retry_after) in zip(limits, counted, strict=True):
        if count > x.limit:
            raise TooManyRequests(
                f"{what}过于频繁，请 {retry_after} 秒后再试",
                headers={"Retry-After": str(retry_after)},
            )


def _parse(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:52100"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_ip(request: Request, settings: Settings) -> str:
    """The client's address, for per-IP limits and audit lines.

    The TCP peer, unless it is one of ``YDT_TRUSTED_PROXIES``: then the
    forwarding headers are read, and the client is the right-most address in
    ``X-Forwarded-For`` that is not a trusted proxy (each proxy appends the
    peer it saw, so everything left of the first untrusted hop was written by
    the client and proves nothing). ``X-Real-IP`` is used when a trusted proxy
    sends no ``X-Forwarded-For``. A hop that is not an address stops the walk
    at the last trusted one, so a forged header can never rotate the key.
    """
    peer_text = request.client.host if request.client else ""
    peer = _parse(peer_text)
    if peer is None:
        return peer_text or "unknown"
    proxies: Sequence[IPNetwork] = settings.trusted_proxies
    if not proxies or not _trusted(peer, proxies):
        return str(peer)
    hops = [
        part
        for value in request.headers.getlist("x-forwarded-for")
        for part in value.split(",")
        if part.strip()
    ]
    if not hops:
        real = _parse(request.headers.get("x-real-ip", ""))
        return str(real if real is not None else peer)
    current = peer
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return str(current)
        current = address
        if not _trusted(address, proxies):
            return str(address)
    return str(current)  # every hop is one of our proxies: the left-most is the origin


def ip_bucket(ip: str) -> str:
    """The unit a per-IP limit counts: an IPv4 address, or an IPv6 /64.

    One IPv6 subscriber gets a /64 (2**64 addresses); counting single
    addresses would let them change address on every attempt.
    """
    address = _parse(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else ip
