"""Keys that live outside the database, and the keyring built from them.

A dump of the database must not reveal who accused whom, and an insider with
the database must not be able to recompute a consistent rewrite of a case's
history. Both need secrets the database does not hold:

* key-encryption keys (KEKs), each with a key id: they wrap the per-record
  data keys of sealed identity (``app/core/crypto.py``). Several may be
  loaded; the first (``active``) wraps new records, the others still unwrap
  until ``ydt keys retire`` removes them after ``ydt keys rotate``;
* the chain key: keyed hash-chain links and the commitments hashed into a
  chain instead of identity fields;
* the index key: blind indexes (HMAC) where identity must be looked up
  (a resident's own cases, search by phone, login by openid).

Each comes from a setting (``YDT_IDENTITY_KEYS``, ``YDT_CHAIN_KEY``,
``YDT_INDEX_KEY``) or a file under ``YDT_KEY_DIR``. The embedded default
generates the files on first use, like the JWT secret; anywhere else a
missing key refuses to start with a message naming it.

The keyring is installed once per process (``install``, done by
``create_app``; ``current`` loads it from the settings otherwise): chain
entries are appended from many features, and threading a keyring through
every call would put a key parameter on half the code base.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from app.core.config import ConfigurationError, Settings, get_settings

KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MIN_SECRET_CHARS = 32
KEK_FILE = "identity-keys.json"
CHAIN_FILE = "chain.key"
INDEX_FILE = "index.key"
GENERATE_HINT = "generate them with `ydt keys generate`"


_T = TypeVar("_T")


class KeyUnavailable(RuntimeError):
    """A record names a key id this process was not given (retired or not configured)."""


def derive(secret: bytes, label: str) -> bytes:
    """A 32-byte key for one purpose: one secret never keys two different jobs."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"yidiantong", info=label.encode()
    ).derive(secret)


def new_secret() -> str:
    return secrets.token_urlsafe(48)


def new_kid() -> str:
    return "k" + secrets.token_hex(4)


def _write_new(path: Path, data: bytes) -> bool:
    """Create ``path`` (0600) atomically; False when another process made it first.

    Written to a temporary file and hard-linked into place, so a reader never
    sees half a key and two processes starting at once agree on one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def replace_file(path: Path, data: bytes) -> None:
    """Overwrite a key file atomically (rotation), keeping it private."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create(path: Path, *, create: Callable[[], bytes] | None, missing: str) -> bytes:
    """The bytes of a named secret file, created by ``create`` when allowed.

    ``create`` is None outside the embedded default: a key nobody configured
    would be lost with the container, and with it every record it protects,
    so its absence is an error (``missing`` says what to set) instead.
    Reusable for any secret file (e.g. a signing key): pass what makes one.
    """
    if path.exists():
        return path.read_bytes()
    if create is None:
        raise ConfigurationError(missing)
    data = create()
    if not _write_new(path, data):
        return path.read_bytes()
    return data


def named_secret(settings: Settings, value: SecretStr | None, *, file: str, setting: str) -> bytes:
    """A secret from its setting, else from ``KEY_DIR/file`` (generated when embedded)."""
    if value is not None and value.get_secret_value():
        raw = value.get_secret_value().strip()
        if len(raw) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"{setting} is too short: use at least {MIN_SECRET_CHARS} characters"
            )
        return raw.encode()
    data = load_or_create(
        settings.key_dir / file,
        create=(lambda: new_secret().encode()) if settings.is_embedded else None,
        missing=f"{setting} is not set and {settings.key_dir / file} does not exist",
    )
    if len(data.strip()) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            f"{settings.key_dir / file} is too short: use at least {MIN_SECRET_CHARS} characters"
        )
    return data.strip()


def parse_keks(raw: str, *, where: str) -> tuple[str, dict[str, bytes]]:
    """``kid:secret,kid:secret`` → (active kid, {kid: secret}); the first is active."""
    keks: dict[str, bytes] = {}
    active = ""
    for part in raw.split(","):
        if not part.strip():
            continue
        kid, sep, secret = part.strip().partition(":")
        if not sep or not KID_RE.fullmatch(kid):
            raise ConfigurationError(
                f"{where}: each key is kid:secret, kid of letters, digits, - or _"
            )
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"{where}: key {kid} is shorter than {MIN_SECRET_CHARS} characters"
            )
        if kid in keks:
            raise ConfigurationError(f"{where}: key id {kid} appears twice")
        keks[kid] = secret.encode()
        active = active or kid
    if not keks:
        raise ConfigurationError(f"{where} holds no key")
    return active, keks


def read_kek_file(path: Path) -> tuple[str, dict[str, bytes]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        active, keys = str(doc["active"]), dict(doc["keys"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not a key file ({{'active', 'keys'}})") from exc
    _, keks = parse_keks(",".join(f"{k}:{v}" for k, v in keys.items()), where=str(path))
    if active not in keks:
        raise ConfigurationError(f"{path}: the active key {active} is not in the file")
    return active, keks


def write_kek_file(
    path: Path, active: str, keks: Mapping[str, bytes], *, new: bool = False
) -> bool:
    doc = {"active": active, "keys": {k: v.decode() for k, v in keks.items()}}
    data = (json.dumps(doc, indent=2) + "\n").encode()
    if new:
        return _write_new(path, data)
    replace_file(path, data)
    return True


def _keks(settings: Settings) -> tuple[str, dict[str, bytes], Literal["settings", "file"]]:
    if settings.identity_keys is not None and settings.identity_keys.get_secret_value():
        active, keks = parse_keks(
            settings.identity_keys.get_secret_value(), where="YDT_IDENTITY_KEYS"
        )
        return active, keks, "settings"
    path = settings.key_dir / KEK_FILE
    if not path.exists():
        if not settings.is_embedded:
            raise ConfigurationError(f"YDT_IDENTITY_KEYS is not set and {path} does not exist")
        kid = new_kid()
        write_kek_file(path, kid, {kid: new_secret().encode()}, new=True)
    active, keks = read_kek_file(path)
    return active, keks, "file"


@dataclass(frozen=True, slots=True)
class Keyring:
    keks: Mapping[str, bytes]  # kid → 32-byte key-encryption key
    active: str
    link_key: bytes  # keyed chain links
    commit_key: bytes  # commitments hashed into chains
    index_key: bytes  # blind indexes
    source: Literal["settings", "file"]
    kek_file: Path | None = None

    @classmethod
    def build(
        cls,
        *,
        keks: Mapping[str, bytes],
        active: str,
        chain: bytes,
        index: bytes,
        source: Literal["settings", "file"] = "settings",
        kek_file: Path | None = None,
    ) -> Keyring:
        return cls(
            keks={kid: derive(secret, f"ydt/kek/{kid}") for kid, secret in keks.items()},
            active=active,
            link_key=derive(chain, "ydt/chain/link"),
            commit_key=derive(chain, "ydt/chain/commit"),
            index_key=derive(index, "ydt/index"),
            source=source,
            kek_file=kek_file,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """Every key, or one error naming all that are missing (refuse to start)."""
        problems: list[str] = []

        def attempt(load: Callable[[], _T]) -> _T | None:
            try:
                return load()
            except ConfigurationError as exc:
                problems.append(str(exc))
                return None

        keks = attempt(lambda: _keks(settings))
        chain = attempt(
            lambda: named_secret(
                settings, settings.chain_key, file=CHAIN_FILE, setting="YDT_CHAIN_KEY"
            )
        )
        index = attempt(
            lambda: named_secret(
                settings, settings.index_key, file=INDEX_FILE, setting="YDT_INDEX_KEY"
            )
        )
        if keks is None or chain is None or index is None:
            raise ConfigurationError(
                "identity and audit keys are missing: "
                + "; ".join(problems)
                + ". They are required outside the embedded default (SQLite + local media): "
                + GENERATE_HINT
                + " and set them, or mount the files in YDT_KEY_DIR."
            )
        active, secrets_, source = keks
        return cls.build(
            keks=secrets_,
            active=active,
            chain=chain,
            index=index,
            source=source,
            kek_file=settings.key_dir / KEK_FILE if source == "file" else None,
        )

    def kek(self, kid: str) -> bytes:
        try:
            return self.keks[kid]
        except KeyError:
            raise KeyUnavailable(f"key {kid} is not loaded (retired or not configured)") from None


_current: Keyring | None = None


def install(keyring: Keyring) -> Keyring:
    global _current
    _current = keyring
    return keyring


def current() -> Keyring:
    """The process's keyring; loaded from the settings the first time if none was installed."""
    if _current is None:
        return install(Keyring.from_settings(get_settings()))
    return _current
