"""``ydt keys``: generate, inspect, rotate and retire the identity keys.

Rotation, in order:
1. a new key-encryption key becomes active: ``ydt keys rotate --new-key``
   adds one to ``KEY_DIR/identity-keys.json``; with ``YDT_IDENTITY_KEYS`` the
   operator puts a new ``kid:secret`` first in it and restarts the service
   (the old key stays listed after it, so it still decrypts);
2. ``ydt keys rotate`` re-wraps every sealed record's data key with the
   active key. Only the wrapped data key changes, never the ciphertext, so
   it is one small operation per record; it can be run again safely;
3. ``ydt keys retire KID`` drops a key once no record needs it.

The chain and index keys are not rotated: old chain links and every blind
index are computed with them (``app/core/keys.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import crypto, keys
from app.core.config import ConfigurationError, Settings
from app.models import Citizen, Complaint, IdempotencyRecord

BATCH = 500


def generate() -> list[str]:
    """Settings lines for a new installation (outside the embedded default)."""
    return [
        f"YDT_IDENTITY_KEYS={keys.new_kid()}:{keys.new_secret()}",
        f"YDT_CHAIN_KEY={keys.new_secret()}",
        f"YDT_INDEX_KEY={keys.new_secret()}",
    ]


def add_key(keyring: keys.Keyring) -> str:
    """A new active key-encryption key in the key file; the old ones stay to decrypt."""
    if keyring.source != "file" or keyring.kek_file is None:
        raise ConfigurationError(
            "the identity keys come from YDT_IDENTITY_KEYS: put a new kid:secret first in it "
            "(keep the old one after it), restart, then run `ydt keys rotate`"
        )
    _, secrets_ = keys.read_kek_file(keyring.kek_file)
    kid = keys.new_kid()
    keys.write_kek_file(keyring.kek_file, kid, {kid: keys.new_secret().encode(), **secrets_})
    return kid


@dataclass(frozen=True, slots=True)
class Usage:
    by_kid: dict[str, int]

    def render(self, keyring: keys.Keyring) -> list[str]:
        lines = [f"active key: {keyring.active} (from {keyring.source})"]
        for kid in sorted(set(keyring.keks) | set(self.by_kid)):
            state = "loaded" if kid in keyring.keks else "NOT LOADED"
            lines.append(f"  {kid}: {self.by_kid.get(kid, 0)} sealed records ({state})")
        return lines


async def _sealed(session: AsyncSession) -> list[tuple[str, object, str]]:
    """(table, row id, token) of every sealed value."""
    found: list[tuple[str, object, str]] = []
    rows = await session.execute(
        select(Complaint.id, Complaint.identity_sealed).where(
            Complaint.identity_sealed.is_not(None)
        )
    )
    found += [("complaints", cid, str(t)) for cid, t in rows]
    rows = await session.execute(select(Citizen.id, Citizen.openid_sealed))
    found += [("citizens", cid, str(t)) for cid, t in rows]
    rows = await session.execute(
        select(IdempotencyRecord.id, IdempotencyRecord.response).where(
            IdempotencyRecord.response.is_not(None)
        )
    )
    for rid, response in rows:
        token = response.get("sealed") if isinstance(response, dict) else None
        if crypto.is_sealed(token):
            found.append(("idempotency_records", rid, str(token)))
    return found


async def usage(session: AsyncSession) -> Usage:
    return Usage(dict(Counter(crypto.kid_of(t) for _, _, t in await _sealed(session))))


async def rotate(session: AsyncSession, keyring: keys.Keyring) -> int:
    """Re-wrap every data key not wrapped by the active key; the count re-wrapped."""
    done = 0
    for table, rid, token in await _sealed(session):
        if crypto.kid_of(token) == keyring.active:
            continue
        new = crypto.rewrap(keyring, token)
        if table == "complaints":
            stmt = update(Complaint).where(Complaint.id == rid).values(identity_sealed=new)
        elif table == "citizens":
            stmt = update(Citizen).where(Citizen.id == rid).values(openid_sealed=new)
        else:
            stmt = (
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == rid)
                .values(response={"sealed": new})
            )
        await session.execute(stmt.execution_options(synchronize_session=False))
        done += 1
    await session.flush()
    return done


async def retire(session: AsyncSession, keyring: keys.Keyring, kid: str) -> str:
    """Drop ``kid`` from the key file, refusing while any record still needs it."""
    if kid == keyring.active:
        raise ConfigurationError(f"{kid} is the active key: make another one active first")
    if kid not in keyring.keks:
        raise ConfigurationError(f"{kid} is not a loaded key")
    left = (await usage(session)).by_kid.get(kid, 0)
    if left:
        raise ConfigurationError(
            f"{left} records are still sealed with {kid}: run `ydt keys rotate`"
        )
    if keyring.source != "file" or keyring.kek_file is None:
        return f"no record uses {kid}: remove it from YDT_IDENTITY_KEYS and restart"
    active, secrets_ = keys.read_kek_file(keyring.kek_file)
    secrets_.pop(kid, None)
    keys.write_kek_file(keyring.kek_file, active, secrets_)
    return f"retired {kid} from {keyring.kek_file}"


def reload(settings: Settings) -> keys.Keyring:
    return keys.install(keys.Keyring.from_settings(settings))
