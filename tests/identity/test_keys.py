"""The keyring: where keys come from, when the service refuses to start, and
what sealing, rotation and blind indexes promise."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from app.core import crypto, keys
from app.core.config import ConfigurationError, Settings
from app.main import create_app

KEK = "k1:" + "a" * 40
CHAIN = "c" * 40
INDEX = "i" * 40


def settings(tmp_path: Path, **values: object) -> Settings:
    base: dict[str, object] = {
        "_env_file": None,
        "key_dir": tmp_path / "keys",
        "jwt_secret": "j" * 40,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
    }
    base.update(values)
    return Settings(**base)  # type: ignore[arg-type]


def ring(kid: str, *, others: dict[str, str] | None = None) -> keys.Keyring:
    secrets_ = {kid: f"kek-{kid}-".ljust(40, "x").encode()}
    secrets_.update({k: v.encode() for k, v in (others or {}).items()})
    return keys.Keyring.build(keks=secrets_, active=kid, chain=CHAIN.encode(), index=INDEX.encode())


class TestWhereKeysComeFrom:
    def test_embedded_default_generates_private_key_files_once(self, tmp_path: Path) -> None:
        first = keys.Keyring.from_settings(settings(tmp_path))
        again = keys.Keyring.from_settings(settings(tmp_path))
        assert first == again and first.source == "file"
        for name in (keys.KEK_FILE, keys.CHAIN_FILE, keys.INDEX_FILE):
            mode = (tmp_path / "keys" / name).stat().st_mode
            assert stat.S_IMODE(mode) == 0o600, name
        doc = json.loads((tmp_path / "keys" / keys.KEK_FILE).read_text())
        assert doc["active"] in doc["keys"] and first.active == doc["active"]

    def test_outside_the_embedded_default_missing_keys_refuse_to_start(
        self, tmp_path: Path
    ) -> None:
        s = settings(tmp_path, env="production")
        with pytest.raises(ConfigurationError) as err:
            keys.Keyring.from_settings(s)
        message = str(err.value)
        for name in ("YDT_IDENTITY_KEYS", "YDT_CHAIN_KEY", "YDT_INDEX_KEY", "ydt keys generate"):
            assert name in message
        assert not (tmp_path / "keys").exists()  # nothing generated
        with pytest.raises(ConfigurationError, match="YDT_CHAIN_KEY"):
            create_app(s, configure_logs=False)

    def test_outside_the_embedded_default_settings_or_mounted_files_work(
        self, tmp_path: Path
    ) -> None:
        from_env = keys.Keyring.from_settings(
            settings(
                tmp_path, env="production", identity_keys=KEK, chain_key=CHAIN, index_key=INDEX
            )
        )
        assert from_env.active == "k1" and from_env.source == "settings"
        embedded = keys.Keyring.from_settings(settings(tmp_path))  # writes the files
        mounted = keys.Keyring.from_settings(settings(tmp_path, env="production"))
        assert mounted == embedded

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("identity_keys", "k1:short", "shorter than 32"),
            ("identity_keys", "bad kid:" + "a" * 40, "kid:secret"),
            ("identity_keys", f"{KEK},{KEK}", "appears twice"),
            ("identity_keys", " , ", "holds no key"),
            ("chain_key", "too-short", "YDT_CHAIN_KEY is too short"),
        ],
    )
    def test_malformed_keys_are_refused_with_what_is_wrong(
        self, tmp_path: Path, field: str, value: str, message: str
    ) -> None:
        values = {"identity_keys": KEK, "chain_key": CHAIN, "index_key": INDEX, field: value}
        with pytest.raises(ConfigurationError, match=message):
            keys.Keyring.from_settings(settings(tmp_path, env="production", **values))

    def test_a_named_secret_file_is_never_overwritten(self, tmp_path: Path) -> None:
        path = tmp_path / "keys" / "signing.pem"
        made = keys.load_or_create(path, create=lambda: b"first", missing="-")
        kept = keys.load_or_create(path, create=lambda: b"second", missing="-")
        assert made == kept == b"first"
        with pytest.raises(ConfigurationError, match="set YDT_X"):
            keys.load_or_create(tmp_path / "none", create=None, missing="set YDT_X")


class TestSealing:
    def test_a_sealed_value_opens_only_on_its_own_record(self) -> None:
        k = ring("k1")
        token = crypto.seal(k, "王大爷 13812345678".encode(), aad="complaint:a:identity")
        assert "13812345678" not in token and crypto.kid_of(token) == "k1"
        assert crypto.unseal(k, token, aad="complaint:a:identity").decode() == "王大爷 13812345678"
        with pytest.raises(crypto.SealBroken):
            crypto.unseal(k, token, aad="complaint:b:identity")  # copied onto another case
        prefix, kid, wrapped, body = token.split(".")
        flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        with pytest.raises(crypto.SealBroken):
            crypto.unseal(k, ".".join((prefix, kid, wrapped, flipped)), aad="complaint:a:identity")
        with pytest.raises(crypto.SealBroken):
            crypto.unseal(_other_k1(), token, aad="complaint:a:identity")

    def test_every_record_has_its_own_data_key(self) -> None:
        k = ring("k1")
        a = crypto.seal(k, b"same", aad="x")
        b = crypto.seal(k, b"same", aad="x")
        assert a.split(".")[2] != b.split(".")[2] and a.split(".")[3] != b.split(".")[3]

    def test_rotation_rewraps_the_data_key_and_keeps_the_ciphertext(self) -> None:
        old = ring("k1")
        token = crypto.seal(old, b"secret", aad="x")
        both = keys.Keyring.build(
            keks={"k2": b"kek-k2-".ljust(40, b"y"), "k1": b"kek-k1-".ljust(40, b"x")},
            active="k2",
            chain=CHAIN.encode(),
            index=INDEX.encode(),
        )
        moved = crypto.rewrap(both, token)
        assert crypto.kid_of(moved) == "k2" and moved.split(".")[3] == token.split(".")[3]
        assert crypto.rewrap(both, moved) == moved
        only_new = keys.Keyring.build(
            keks={"k2": b"kek-k2-".ljust(40, b"y")},
            active="k2",
            chain=CHAIN.encode(),
            index=INDEX.encode(),
        )
        assert crypto.unseal(only_new, moved, aad="x") == b"secret"
        with pytest.raises(keys.KeyUnavailable):
            crypto.unseal(only_new, token, aad="x")  # its key was retired before rotation

    def test_blind_indexes_are_keyed_and_bound_to_their_purpose(self) -> None:
        k = ring("k1")
        other = keys.Keyring.build(
            keks={"k1": b"z" * 40}, active="k1", chain=CHAIN.encode(), index=b"j" * 40
        )
        phone = "13812345678"
        assert crypto.blind(k, "phone", phone) == crypto.blind(k, "phone", phone)
        assert crypto.blind(k, "phone", phone) != crypto.blind(k, "owner", phone)
        assert crypto.blind(k, "phone", phone) != crypto.blind(other, "phone", phone)
        assert crypto.commit(k, "phone", phone) != crypto.blind(k, "phone", phone)


def _other_k1() -> keys.Keyring:
    """Another installation's key that happens to have the same id."""
    return keys.Keyring.build(
        keks={"k1": b"a-different-key-".ljust(40, b"q")},
        active="k1",
        chain=CHAIN.encode(),
        index=INDEX.encode(),
    )
