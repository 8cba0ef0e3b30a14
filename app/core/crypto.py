"""Envelope encryption, blind indexes and keyed commitments.

* ``seal``: AES-256-GCM under a fresh data key (DEK) per record; the DEK is
  wrapped (AES key wrap, RFC 3394) by the active key-encryption key, whose id
  travels with the record. Rotation re-wraps the DEK only (``rewrap``): the
  ciphertext never changes, so rotating costs one small operation per record.
  The record's own identity is the GCM associated data, so a sealed value
  copied onto another row does not open there.
* ``blind``: HMAC of a value under the index key, for equality lookups (the
  same phone always gives the same index) without storing the value. Every
  use has its own purpose label, so indexes of one kind cannot be matched
  against another's.
* ``commit``: HMAC under the commitment key, for values hashed into a chain;
  a reader without the key cannot test guesses against it.

A token looks like ``e1.<kid>.<wrapped DEK>.<nonce ‖ ciphertext>`` (base64url).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from app.core.keys import Keyring, KeyUnavailable

PREFIX = "e1"
NONCE = 12


class SealBroken(RuntimeError):
    """A sealed value does not open: altered, moved to another record, or wrong key."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token: str) -> tuple[str, bytes, bytes]:
    try:
        prefix, kid, wrapped, body = token.split(".")
        if prefix != PREFIX:
            raise ValueError(prefix)
        return kid, _unb64(wrapped), _unb64(body)
    except ValueError as exc:
        raise SealBroken("not a sealed value") from exc


def kid_of(token: str) -> str:
    return _parts(token)[0]


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX + ".")


def seal(keyring: Keyring, plaintext: bytes, *, aad: str) -> str:
    dek = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE)
    body = nonce + AESGCM(dek).encrypt(nonce, plaintext, aad.encode())
    wrapped = aes_key_wrap(keyring.kek(keyring.active), dek)
    return ".".join((PREFIX, keyring.active, _b64(wrapped), _b64(body)))


def _dek(keyring: Keyring, kid: str, wrapped: bytes) -> bytes:
    try:
        return aes_key_unwrap(keyring.kek(kid), wrapped)
    except InvalidUnwrap as exc:
        raise SealBroken(f"the data key does not unwrap with key {kid}") from exc


def unseal(keyring: Keyring, token: str, *, aad: str) -> bytes:
    kid, wrapped, body = _parts(token)
    try:
        return AESGCM(_dek(keyring, kid, wrapped)).decrypt(body[:NONCE], body[NONCE:], aad.encode())
    except InvalidTag as exc:
        raise SealBroken("the sealed value was altered or belongs to another record") from exc


def rewrap(keyring: Keyring, token: str) -> str:
    """The same ciphertext with its data key wrapped by the active key."""
    kid, wrapped, body = _parts(token)
    if kid == keyring.active:
        return token
    dek = _dek(keyring, kid, wrapped)
    return ".".join(
        (PREFIX, keyring.active, _b64(aes_key_wrap(keyring.kek(keyring.active), dek)), _b64(body))
    )


def seal_json(keyring: Keyring, value: Any, *, aad: str) -> str:
    return seal(keyring, json.dumps(value, ensure_ascii=False, sort_keys=True).encode(), aad=aad)


def unseal_json(keyring: Keyring, token: str, *, aad: str) -> Any:
    return json.loads(unseal(keyring, token, aad=aad))


def blind(keyring: Keyring, purpose: str, value: str) -> str:
    """Deterministic keyed index of ``value`` for ``purpose`` (64 hex characters)."""
    return hmac.new(keyring.index_key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def commit(keyring: Keyring, purpose: str, value: str) -> str:
    """A keyed commitment to ``value``: checkable with the key, not guessable without."""
    return hmac.new(
        keyring.commit_key, f"{purpose}\x00{value}".encode(), hashlib.sha256
    ).hexdigest()


def keyed_link(keyring: Keyring, data: str) -> str:
    return hmac.new(keyring.link_key, data.encode(), hashlib.sha256).hexdigest()


__all__ = [
    "KeyUnavailable",
    "SealBroken",
    "blind",
    "commit",
    "is_sealed",
    "keyed_link",
    "kid_of",
    "rewrap",
    "seal",
    "seal_json",
    "unseal",
    "unseal_json",
]
