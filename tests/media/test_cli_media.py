"""``ydt media verify`` and ``ydt media cleanup`` as an operator runs them."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tests import mediafiles
from tests.test_cli import ydt


def test_verify_names_a_tampered_file_and_cleanup_sweeps_orphans(tmp_path: Path) -> None:
    db, media_dir = tmp_path / "cli.db", tmp_path / "m"
    env = {
        **os.environ,
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "YDT_MEDIA_DIR": str(media_dir),
        "YDT_SECRET_FILE": str(tmp_path / "s"),
        "YDT_KEY_DIR": str(tmp_path / "keys"),
        "YDT_LOG_LEVEL": "WARNING",
    }
    assert ydt(env, "migrate").returncode == 0
    made = ydt(
        env, "create-staff", "--username", "auditor", "--password", "Qm7!vRt2#zLp9wXc",
        "--role", "admin",
    )
    assert made.returncode == 0, made.stderr
    day = f"{datetime.now(UTC):%Y/%m/%d}"
    data = mediafiles.wav()
    media_id = uuid.uuid4().hex
    key = f"media/{day}/{media_id}.wav"
    (media_dir / key).parent.mkdir(parents=True)
    (media_dir / key).write_bytes(data)
    with sqlite3.connect(db) as conn:
        staff_id = conn.execute("select id from staff_users").fetchone()[0]
        conn.execute(
            "insert into media (id, owner_staff_id, kind, status, content_type, storage_key,"
            " size, max_size, sha256, direct, created_at, derive_attempts)"
            " values (?, ?, 'voice', 'ready', 'audio/wav', ?, ?, ?, ?, 0, ?, 0)",
            (
                media_id,
                staff_id,
                key,
                len(data),
                len(data),
                hashlib.sha256(data).hexdigest(),
                datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
            ),
        )
    ok = ydt(env, "media", "verify")
    assert ok.returncode == 0 and "0 problems" in ok.stdout, ok.stdout + ok.stderr

    (media_dir / key).write_bytes(mediafiles.wav(seconds=0.25))
    bad = ydt(env, "media", "verify")
    assert bad.returncode == 1 and media_id in bad.stdout and "哈希不符" in bad.stdout

    orphan = media_dir / f"media/{day}/{uuid.uuid4().hex}.jpg"
    orphan.write_bytes(b"left by a request that gave up")
    old = time.time() - 2 * 3600
    os.utime(orphan, (old, old))
    os.utime(media_dir / key, (old, old))
    swept = ydt(env, "media", "cleanup")
    assert swept.returncode == 0 and "deleted 1 stored objects" in swept.stdout, swept.stdout
    assert not orphan.exists() and (media_dir / key).exists()
