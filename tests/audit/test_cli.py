"""``ydt audit checkpoint [export]``, ``verify --checkpoint`` and ``keygen`` as
an operator runs them (a key change included), and the refusal to sign
without a key."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from tests.conftest import TEST_KEYS
from tests.test_cli import ydt


def embedded(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("YDT_")
    }  # only what this test sets
    env.update(
        YDT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        YDT_MEDIA_DIR=str(tmp_path / "m"),
        YDT_SECRET_FILE=str(tmp_path / "s"),
        YDT_KEY_DIR=str(tmp_path / "keys"),
        YDT_LOG_LEVEL="WARNING",
    )
    return env


def test_checkpoint_export_rotate_and_verify_against_the_file(tmp_path: Path) -> None:
    env = embedded(tmp_path)
    assert ydt(env, "migrate").returncode == 0
    made = ydt(env, "audit", "checkpoint")
    assert made.returncode == 0 and "checkpoint #1:" in made.stdout, made.stderr
    assert (tmp_path / "keys" / "audit-signing.pem").exists()  # generated once, outside the db
    assert ydt(env, "worker", "--once").returncode == 0  # the worker's periodic one
    out = tmp_path / "kept.json"
    exp = ydt(env, "audit", "checkpoint", "export", "--all", "--out", str(out))
    assert exp.returncode == 0 and "2 checkpoint(s) up to #2" in exp.stdout, exp.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert len(doc["public_keys"]) == 1 and [c["seq"] for c in doc["checkpoints"]] == [1, 2]
    ok = ydt(env, "audit", "verify", "--checkpoint", str(out))
    assert ok.returncode == 0 and "all event chains intact" in ok.stdout, ok.stdout
    assert "exported checkpoint #2" in ok.stdout
    # A new signing key: the old public key must be listed to keep trusting #1 and #2.
    key = tmp_path / "signing.pem"
    r = ydt(env, "audit", "keygen", "--out", str(key))
    assert r.returncode == 0 and key.stat().st_mode & 0o077 == 0
    assert len(r.stdout.strip().rsplit(" ", 1)[-1]) == 64
    env["YDT_AUDIT_SIGNING_KEY"] = key.read_text(encoding="utf-8")
    assert ydt(env, "audit", "checkpoint").returncode == 0
    untrusted = ydt(env, "audit", "verify")
    assert untrusted.returncode == 1 and "signed by an untrusted key" in untrusted.stdout
    env["YDT_AUDIT_PUBLIC_KEYS"] = next(iter(doc["public_keys"].values()))
    assert ydt(env, "audit", "verify").returncode == 0
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("update audit_checkpoints set root = ? where seq = 2", ("0" * 64,))
    bad = ydt(env, "audit", "verify")
    assert bad.returncode == 1 and "BROKEN audit checkpoint (checkpoint:2)" in bad.stdout
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{}", encoding="utf-8")
    refused = ydt(env, "audit", "verify", "--checkpoint", str(garbage))
    assert refused.returncode == 2 and "not an exported checkpoint" in refused.stderr


def test_no_signing_key_outside_the_embedded_default_refuses_to_start(tmp_path: Path) -> None:
    env = embedded(tmp_path)
    env["YDT_DATABASE_URL"] = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
    env["YDT_JWT_SECRET"] = "x" * 48
    env.update({f"YDT_{k.upper()}": v for k, v in TEST_KEYS.items()})  # the other keys are set
    for args in (("audit", "checkpoint"), ("worker", "--once")):
        r = ydt(env, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "YDT_AUDIT_SIGNING_KEY is not set" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "keys" / "audit-signing.pem").exists()
