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


def _signed(tokens: TokenService, **claims: object) -> str:
    """A token with the right key and arbitrary claims (the attacker's best case)."""
    payload: dict[str, object] = {
        "sub": "1",
        "knd": "staff",
        "typ": "access",
        "exp": int(NOW.timestamp()) + 60,
        "sid": "a" * 32,
    }
    payload.update(claims)
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not ...}, "s" * 32, algorithm="HS256"
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "1 OR 1=1"},
        {"sub": 2**70},
        {"sub": str(2**70)},
        {"sub": str(2**31)},
        {"sub": "0"},
        {"sub": "-1"},
        {"sub": "01"},
        {"sub": "１"},  # a full-width digit: str.isdigit() would say yes
        {"sub": "²"},
        {"sub": ""},
        {"sub": 1},
        {"sub": None},
        {"sub": ...},
        {"exp": "tomorrow"},
        {"exp": None},
        {"exp": True},
        {"exp": [1]},
        {"exp": 1e300},
        {"exp": 2**70},
        {"exp": -1},
        {"exp": ...},
        {"iat": "now"},
        {"knd": "root"},
        {"knd": 1},
        {"knd": ...},
        {"typ": "id"},
        {"typ": ...},
        {"unit": "12"},
        {"unit": 2**70},
        {"unit": True},
        {"unit": 0},
        {"role": 5},
        {"role": "x" * 100},
        {"role": "admin' --"},
        {"sid": "../etc"},
        {"sid": 5},
        {"sid": "A" * 32},
        {"gen": -1},
        {"gen": "1"},
        {"gen": 2**70},
        {"jti": {"a": 1}},
    ],
    ids=lambda c: ",".join(f"{k}={v!r}"[:40] for k, v in c.items()),
)
def test_malformed_claims_signed_with_the_right_key_are_401(
    tokens: TokenService, claims: dict[str, object]
) -> None:
    with pytest.raises(Unauthorized):
        tokens.decode(_signed(tokens, **claims), now=NOW)


def test_nan_expiry_and_non_object_payloads_are_401(tokens: TokenService) -> None:
    nan = jwt.api_jws.encode(
        b'{"sub": "1", "knd": "staff", "typ": "access", "exp": NaN}', "s" * 32, algorithm="HS256"
    )
    listed = jwt.api_jws.encode(b'["sub", "1"]', "s" * 32, algorithm="HS256")
    for token in (nan, listed):
        with pytest.raises(Unauthorized):
            tokens.decode(token, now=NOW)


@pytest.mark.parametrize("token", ["x" * 5000, "ä.b.c", "a\x00b.c.d"])
def test_oversized_and_non_ascii_tokens_are_401(tokens: TokenService, token: str) -> None:
    with pytest.raises(Unauthorized):
        tokens.decode(token, now=NOW)


def test_well_formed_claims_pass(tokens: TokenService) -> None:
    token = _signed(tokens, sub=str(2**31 - 1), unit=7, role="supervisor", gen=..., iat=1)
    claims = tokens.decode(token, now=NOW)
    assert (claims.subject_id, claims.unit_id, claims.session_id) == (2**31 - 1, 7, "a" * 32)


def test_session_and_generation_round_trip(tokens: TokenService) -> None:
    token, _ = tokens.issue(
        subject="3",
        kind="citizen",
        now=NOW,
        token_type="refresh",
        session_id="ab" * 16,
        generation=4,
    )
    claims = tokens.decode(token, now=NOW, expected_type="refresh")
    assert (claims.subject_id, claims.session_id, claims.generation) == (3, "ab" * 16, 4)


def test_unknown_accounts_cost_one_verification_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hash to check still spends one verification (timing tells nothing)."""
    from argon2 import PasswordHasher

    from app.core import security

    calls: list[str] = []

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            calls.append("verify")
            return super().verify(hash, password)

    monkeypatch.setattr(security, "_hasher", Counting(time_cost=1, memory_cost=1024))
    real = security.hash_password("Correct#Horse9")
    assert security.verify_password_or_dummy(real, "Correct#Horse9")
    assert not security.verify_password_or_dummy(None, "Correct#Horse9")
    assert not security.verify_password_or_dummy(None, "anything")
    assert calls == ["verify"] * 3


def test_a_verified_token_is_judged_again_on_every_request(tokens: TokenService) -> None:
    """The signature check is kept per process; time, type and tampering are not."""
    token, _ = tokens.issue(subject="5", kind="citizen", now=NOW, session_id="ab" * 16)
    assert tokens.decode(token, now=NOW).subject == "5"
    assert tokens.decode(token, now=NOW + timedelta(minutes=1)).session_id == "ab" * 16
    with pytest.raises(Unauthorized, match="过期"):  # still expires, by the clock
        tokens.decode(token, now=NOW + timedelta(minutes=30))
    with pytest.raises(Unauthorized):  # still the wrong type for a refresh
        tokens.decode(token, now=NOW, expected_type="refresh")
    head, body, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    for forged in (f"{head}.{body}.{flipped}", f"{head}.{body}x.{signature}"):
        for _ in range(2):  # a refusal is never remembered as a success
            with pytest.raises(Unauthorized):
                tokens.decode(forged, now=NOW)
    other = TokenService("t" * 32, access_minutes=30, refresh_days=30)
    with pytest.raises(Unauthorized):  # another secret: its own cache, refused
        other.decode(token, now=NOW)
