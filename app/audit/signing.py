"""The Ed25519 key that signs checkpoints, kept outside the database.

Whoever can write the database can recompute hashes, even keyed ones if the
chain key leaks with it; what they cannot do without this key is sign a
checkpoint. Only the worker and ``ydt audit checkpoint`` need the private key;
an auditor verifies with the public key alone (``YDT_AUDIT_PUBLIC_KEYS``, or
the one inside an exported checkpoint file).

The key is ``YDT_AUDIT_SIGNING_KEY`` (PEM, or the 32-byte seed as 64 hex
digits) or the file ``YDT_KEY_DIR/audit-signing.pem``; the embedded default
generates that file once. Anywhere else a missing key refuses to start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from app.core import keys
from app.core.config import ConfigurationError, Settings

KEY_FILE = "audit-signing.pem"


def key_id(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]


def _public_hex(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw.hex()


@dataclass(frozen=True, slots=True)
class Signer:
    private: Ed25519PrivateKey
    public_hex: str
    key_id: str

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).hex()


def parse_private(raw: bytes, *, where: str) -> Signer:
    text = raw.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            private = serialization.load_pem_private_key(text, password=None)
        else:
            private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text.decode()))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{where} is not an Ed25519 private key (PEM, or 64 hex digits)"
        ) from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigurationError(f"{where} is not an Ed25519 key")
    public = _public_hex(private)
    return Signer(private, public, key_id(public))


def _new_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_signer(settings: Settings, *, create: bool = True) -> Signer:
    """The signing key; generated once under ``key_dir`` on the embedded default.

    Outside the embedded default an unset key is refused: checkpoints signed
    by a key nobody kept could never be checked against anything.
    """
    value = settings.audit_signing_key
    if value is not None and value.get_secret_value().strip():
        return parse_private(value.get_secret_value().encode(), where="YDT_AUDIT_SIGNING_KEY")
    path = settings.key_dir / KEY_FILE
    raw = keys.load_or_create(
        path,
        create=_new_pem if create and settings.is_embedded else None,
        missing=(
            f"YDT_AUDIT_SIGNING_KEY is not set and {path} does not exist. Checkpoints need "
            "an Ed25519 key kept outside the database, required outside the embedded "
            "default: generate one with `ydt audit keygen` and set it, or mount the file."
        ),
    )
    return parse_private(raw, where=str(path))


def new_key() -> tuple[str, str]:
    """(private PEM, public hex) for ``ydt audit keygen``."""
    pem = _new_pem()
    signer = parse_private(pem, where="new key")
    return pem.decode(), signer.public_hex


def trusted_keys(settings: Settings) -> dict[str, str]:
    """key id → public key (hex) that checkpoint signatures are checked against:
    ``YDT_AUDIT_PUBLIC_KEYS`` (older keys after a change, or an auditor's copy)
    and the signing key's own, when this machine has it. Never from the
    database: whoever rewrote it would also have rewritten the key."""
    found: dict[str, str] = {}
    for part in (settings.audit_public_keys or "").replace(",", " ").split():
        try:
            public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(part))
        except ValueError as exc:
            raise ConfigurationError(
                f"YDT_AUDIT_PUBLIC_KEYS: {part[:16]}… is not an Ed25519 public key (64 hex)"
            ) from exc
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        found[key_id(raw.hex())] = raw.hex()
    value = settings.audit_signing_key
    if (value is not None and value.get_secret_value().strip()) or (
        settings.key_dir / KEY_FILE
    ).exists():
        signer = load_signer(settings, create=False)
        found[signer.key_id] = signer.public_hex
    return found


def check(public_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True
