"""Tokens and password hashes.

Access tokens are short-lived JWTs that carry the subject kind (citizen or
staff), the role and, for staff, the unit, plus the session (``sid``) they
belong to, so a revoked session's access tokens stop working at the next
request. Refresh tokens are longer-lived JWTs of their own type that also
carry their place in the session's rotation (``gen``): each refresh token
works once (app/auth/sessions.py).

Every claim is checked for type and range before anything uses it: a token
signed with the right key is still input, and a bad claim is a 401, never a
500 further down (an id that overflows the INTEGER column, an ``exp`` that is
a string).
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.errors import Unauthorized
from app.core.schemas import DB_INT_MAX

_hasher = PasswordHasher()
ALGORITHM = "HS256"

SubjectKind = Literal["citizen", "staff"]
TokenType = Literal["access", "refresh"]

# A JWT is a few hundred bytes; anything far larger is not ours.
MAX_TOKEN_LENGTH = 4096
# Verified tokens kept per process: a resident's is about 310 characters (some 10 MB
# for all of them; only tokens signed with the secret get in).
VERIFIED_TOKENS = 16384
# NumericDate bounds: after 1970, before the year 3000 (datetime's range ends at 9999).
_MAX_TIMESTAMP = 32_503_680_000
_SUBJECT_RE = re.compile(r"[1-9][0-9]{0,9}")
_SID_RE = re.compile(r"[0-9a-f]{32,64}")
_JTI_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")
_ROLE_RE = re.compile(r"[a-z_]{1,32}")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_dummy: tuple[PasswordHasher, str] | None = None


def verify_password_or_dummy(password_hash: str | None, password: str) -> bool:
    """Verify against the hash, or, without one, against a dummy of the same cost.

    A login for an unknown (or throttled) account must take as long as a real
    one, or timing tells which usernames exist. The dummy is made with the
    hasher in force, so its cost tracks the real hashes'.
    """
    global _dummy
    if password_hash is not None:
        return verify_password(password_hash, password)
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(uuid.uuid4().hex))
    verify_password(_dummy[1], password)
    return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    kind: SubjectKind
    token_type: TokenType
    role: str | None
    unit_id: int | None
    expires_at: datetime
    token_id: str
    # The session the token belongs to; None only for tokens issued without one.
    session_id: str | None = None
    # Refresh tokens: their place in the session's rotation.
    generation: int | None = None

    @property
    def subject_id(self) -> int:
        """The subject as a database id (its range was checked when decoding)."""
        return int(self.subject)


def _invalid() -> Unauthorized:
    return Unauthorized("登录凭证无效，请重新登录")


def _timestamp(value: Any) -> int:
    """A NumericDate: a finite number (not a bool, not a string) in a sane range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid()
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid()
    if not 0 < value < _MAX_TIMESTAMP:
        raise _invalid()
    return int(value)


def _optional_str(payload: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _invalid()
    return value


def _optional_id(payload: dict[str, Any], name: str, *, low: int, high: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid()
    return value


class TokenService:
    def __init__(self, secret: str, *, access_minutes: int, refresh_days: int) -> None:
        if len(secret) < 16:
            raise ValueError("JWT secret is too short (need at least 16 characters)")
        self._secret = secret
        self._access = timedelta(minutes=access_minutes)
        self._refresh = timedelta(days=refresh_days)
        # A token's signature is checked once per process: a resident's app
        # sends the same token for every request of its life, and PyJWT's
        # parse and HMAC were about 6% of a read's CPU (bench/). Only verified
        # payloads are kept (a forged token is checked, and refused, every
        # time); expiry, kind and session are still judged on every request.
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)

    @property
    def refresh_lifetime(self) -> timedelta:
        return self._refresh

    def issue(
        self,
        *,
        subject: str,
        kind: SubjectKind,
        now: datetime,
        token_type: TokenType = "access",
        role: str | None = None,
        unit_id: int | None = None,
        session_id: str | None = None,
        generation: int | None = None,
    ) -> tuple[str, datetime]:
        expires = now + (self._access if token_type == "access" else self._refresh)
        payload: dict[str, Any] = {
            "sub": subject,
            "knd": kind,
            "typ": token_type,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if role is not None:
            payload["role"] = role
        if unit_id is not None:
            payload["unit"] = unit_id
        if session_id is not None:
            payload["sid"] = session_id
        if generation is not None:
            payload["gen"] = generation
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), expires

    def decode(
        self, token: str, *, now: datetime, expected_type: TokenType = "access"
    ) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise _invalid()
        return self._claims(self._verified(token), now=now, expected_type=expected_type)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                # Time is judged by the injectable clock in _claims, not the wall clock.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "exp", "knd", "typ"],
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise _invalid() from exc
        if not isinstance(payload, dict):
            raise _invalid()
        return payload

    def _claims(
        self, payload: dict[str, Any], *, now: datetime, expected_type: TokenType
    ) -> TokenClaims:
        subject = payload["sub"]
        if (
            not isinstance(subject, str)
            or not _SUBJECT_RE.fullmatch(subject)
            or int(subject) > DB_INT_MAX
        ):
            raise _invalid()
        kind, token_type = payload["knd"], payload["typ"]
        if kind not in ("citizen", "staff") or token_type not in ("access", "refresh"):
            raise _invalid()
        expires = _timestamp(payload["exp"])
        if "iat" in payload:
            _timestamp(payload["iat"])
        role = _optional_str(payload, "role", _ROLE_RE)
        unit_id = _optional_id(payload, "unit", low=1, high=DB_INT_MAX)
        session_id = _optional_str(payload, "sid", _SID_RE)
        generation = _optional_id(payload, "gen", low=0, high=DB_INT_MAX)
        token_id = _optional_str(payload, "jti", _JTI_RE) or ""
        # Expiry is checked against the injectable clock, not the wall clock.
        if expires <= int(now.timestamp()):
            raise Unauthorized("登录已过期，请重新登录")
        if token_type != expected_type:
            raise Unauthorized("登录凭证类型不正确")
        return TokenClaims(
            subject=subject,
            kind=kind,
            token_type=token_type,
            role=role,
            unit_id=unit_id,
            expires_at=datetime.fromtimestamp(expires, now.tzinfo or UTC),
            token_id=token_id,
            session_id=session_id,
            generation=generation,
        )
