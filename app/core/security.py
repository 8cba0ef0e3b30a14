"""Tokens and password hashes.

Access tokens are short-lived JWTs that carry the subject kind (citizen or
staff), the role and, for staff, the unit, so most requests need no lookup to
authorise. Refresh tokens are longer-lived JWTs of their own type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.errors import Unauthorized

_hasher = PasswordHasher()
ALGORITHM = "HS256"

SubjectKind = Literal["citizen", "staff"]
TokenType = Literal["access", "refresh"]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
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


class TokenService:
    def __init__(self, secret: str, *, access_minutes: int, refresh_days: int) -> None:
        if len(secret) < 16:
            raise ValueError("JWT secret is too short (need at least 16 characters)")
        self._secret = secret
        self._access = timedelta(minutes=access_minutes)
        self._refresh = timedelta(days=refresh_days)

    def issue(
        self,
        *,
        subject: str,
        kind: SubjectKind,
        now: datetime,
        token_type: TokenType = "access",
        role: str | None = None,
        unit_id: int | None = None,
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
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), expires

    def decode(
        self, token: str, *, now: datetime, expected_type: TokenType = "access"
    ) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                # Time is judged by the injectable clock below, not the wall clock.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "exp", "knd", "typ"],
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("登录凭证无效，请重新登录") from exc
        # Expiry is checked against the injectable clock, not the wall clock.
        if int(payload["exp"]) <= int(now.timestamp()):
            raise Unauthorized("登录已过期，请重新登录")
        if payload["typ"] != expected_type or payload["knd"] not in ("citizen", "staff"):
            raise Unauthorized("登录凭证类型不正确")
        unit = payload.get("unit")
        return TokenClaims(
            subject=str(payload["sub"]),
            kind=payload["knd"],
            token_type=payload["typ"],
            role=payload.get("role"),
            unit_id=int(unit) if unit is not None else None,
            expires_at=datetime.fromtimestamp(int(payload["exp"]), now.tzinfo),
            token_id=str(payload.get("jti", "")),
        )
