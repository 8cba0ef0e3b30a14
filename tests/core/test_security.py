from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app.core.errors import Unauthorized
from app.core.security import TokenService, hash_password, verify_password

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@pytest.fixture
def tokens() -> TokenService:
    return TokenService("s" * 32, access_minutes=30, refresh_days=30)


def test_password_hash_round_trip() -> None:
    h = hash_password("Correct#Horse9")
    assert h.startswith("$argon2")
    assert verify_password(h, "Correct#Horse9")
    assert not verify_password(h, "wrong")
    assert not verify_password("not-a-hash", "wrong")


def test_token_carries_role_and_unit(tokens: TokenService) -> None:
    token, exp = tokens.issue(subject="7", kind="staff", now=NOW, role="supervisor", unit_id=12)
    claims = tokens.decode(token, now=NOW + timedelta(minutes=29))
    assert (claims.subject, claims.kind, claims.role, claims.unit_id) == (
        "7",
        "staff",
        "supervisor",
        12,
    )
    assert exp == NOW + timedelta(minutes=30)


def test_expired_token_is_refused_by_the_injected_clock(tokens: TokenService) -> None:
    token, _ = tokens.issue(subject="1", kind="citizen", now=NOW)
    with pytest.raises(Unauthorized, match="过期"):
        tokens.decode(token, now=NOW + timedelta(minutes=30))


def test_refresh_token_is_not_an_access_token(tokens: TokenService) -> None:
    token, _ = tokens.issue(subject="1", kind="citizen", now=NOW, token_type="refresh")
    with pytest.raises(Unauthorized):
        tokens.decode(token, now=NOW)
    assert tokens.decode(token, now=NOW, expected_type="refresh").subject == "1"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_malformed_tokens_are_401(tokens: TokenService, token: str) -> None:
    with pytest.raises(Unauthorized):
        tokens.decode(token, now=NOW)


def test_token_signed_with_another_key_is_refused(tokens: TokenService) -> None:
    forged = jwt.encode(
        {
            "sub": "1",
            "knd": "staff",
            "typ": "access",
            "exp": int(NOW.timestamp()) + 60,
            "role": "admin",
        },
        "another-key-another-key-another-key",
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        tokens.decode(forged, now=NOW)


def test_alg_none_is_refused(tokens: TokenService) -> None:
    forged = jwt.encode(
        {"sub": "1", "knd": "staff", "typ": "access", "exp": int(NOW.timestamp()) + 60},
        key=None,
        algorithm="none",
    )
    with pytest.raises(Unauthorized):
        tokens.decode(forged, now=NOW)


def test_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError):
        TokenService("short", access_minutes=1, refresh_days=1)
