"""Key rotation: a new active key-encryption key, every data key re-wrapped,
the old key retired, and every sealed record still opens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app import keys_admin
from app.core import keys
from app.core.config import ConfigurationError, Settings
from tests.conftest import TEST_KEYS, make_settings
from tests.identity.helpers import accuse, anonymous, resident

pytestmark = pytest.mark.usefixtures("seeded")
ROOT = Path(__file__).resolve().parents[2]
NAME, PHONE = "慕容复", "13900139000"


@pytest.fixture
def file_keys(tmp_path: Path) -> Iterator[Settings]:
    """The embedded default's key files, in a scratch folder, for this test only."""
    original = keys.current()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, key_dir=tmp_path / "keys", jwt_secret="j" * 40
    )
    keys_admin.reload(settings)
    try:
        yield settings
    finally:
        keys.install(original)


async def test_rotate_then_retire_keeps_every_record_readable(
    client: AsyncClient, session: AsyncSession, file_keys: Settings
) -> None:
    keyring = keys.current()
    first = keyring.active
    me = await resident(client, "rot.me")
    acc = await accuse(client, me, name=NAME, phone=PHONE)
    await anonymous(client, me)
    sealed = (await keys_admin.usage(session)).by_kid
    assert sealed == {first: sealed[first]} and sealed[first] >= 3  # two cases, one citizen

    with pytest.raises(ConfigurationError, match="active key"):
        await keys_admin.retire(session, keyring, first)
    new = keys_admin.add_key(keyring)
    keyring = keys_admin.reload(file_keys)
    assert keyring.active == new and first in keyring.keks
    with pytest.raises(ConfigurationError, match="still sealed"):
        await keys_admin.retire(session, keyring, first)
    assert await keys_admin.rotate(session, keyring) == sealed[first]
    assert await keys_admin.rotate(session, keyring) == 0  # idempotent
    assert (await keys_admin.usage(session)).by_kid == {new: sealed[first]}
    assert "retired" in await keys_admin.retire(session, keyring, first)
    keyring = keys_admin.reload(file_keys)
    assert set(keyring.keks) == {new}

    detail = await client.get(f"/api/v1/complaints/{acc['id']}", headers=me.headers)
    assert detail.status_code == 200 and detail.json()["contact_name"] == NAME
    again = await resident(client, "rot.me")  # the openid's blind index still finds them
    assert again.id == me.id


def test_keys_from_settings_are_rotated_by_the_operator() -> None:
    keyring = keys.Keyring.from_settings(make_settings())
    assert keyring.source == "settings" and keyring.active == "ktest"
    with pytest.raises(ConfigurationError, match="YDT_IDENTITY_KEYS"):
        keys_admin.add_key(keyring)
    assert TEST_KEYS["identity_keys"].startswith("ktest:")


def ydt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_keys_commands(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}",
        "YDT_SECRET_FILE": str(tmp_path / "s"),
        "YDT_KEY_DIR": str(tmp_path / "keys"),
        "YDT_LOG_LEVEL": "WARNING",
    }
    for name in ("YDT_IDENTITY_KEYS", "YDT_CHAIN_KEY", "YDT_INDEX_KEY"):
        env.pop(name, None)
    assert ydt(env, "migrate").returncode == 0
    status = ydt(env, "keys", "status")
    assert status.returncode == 0, status.stderr
    first = status.stdout.split("active key: ")[1].split()[0]
    rotated = ydt(env, "keys", "rotate", "--new-key")
    assert rotated.returncode == 0 and "re-wrapped 0 data keys" in rotated.stdout
    new = rotated.stdout.split("new active key ")[1].split()[0]
    assert new != first
    retired = ydt(env, "keys", "retire", first)
    assert retired.returncode == 0 and f"retired {first}" in retired.stdout
    refused = ydt(env, "keys", "retire", new)
    assert refused.returncode == 2 and "active key" in refused.stderr
    generated = ydt(env, "keys", "generate").stdout.splitlines()
    assert [line.split("=")[0] for line in generated] == [
        "YDT_IDENTITY_KEYS",
        "YDT_CHAIN_KEY",
        "YDT_INDEX_KEY",
    ]
    keys.parse_keks(generated[0].split("=", 1)[1], where="generated")
    production = {**env, "YDT_ENV": "production", "YDT_JWT_SECRET": "j" * 40}
    production["YDT_KEY_DIR"] = str(tmp_path / "empty")
    refused = ydt(production, "worker", "--once")
    assert refused.returncode == 2 and "YDT_IDENTITY_KEYS is not set" in refused.stderr
