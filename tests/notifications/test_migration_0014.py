"""Migration 0014 gives back notices an earlier worker marked 'skipped' only
because WeChat was not configured: they become pending and go out later."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from app.core.config import Settings
from app.core.db import create_engine
from tests import support

INSERT = text(
    "INSERT INTO notifications (recipient_kind, recipient_id, complaint_id, kind, title, body, "
    "channel, status, attempts, next_attempt_at, last_error, created_at) VALUES "
    "('citizen', NULL, NULL, :kind, 't', 'b', 'wechat_subscribe', 'skipped', 0, "
    "'2026-11-24 01:30:00', :error, '2026-11-24 01:30:00')"
)


async def test_unconfigured_skips_become_pending_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm14.db'}"
    await asyncio.to_thread(support.alembic_upgrade, url, "0013")
    engine = create_engine(Settings(_env_file=None, database_url=url), url=url)  # type: ignore[call-arg]
    try:
        async with engine.begin() as conn:
            await conn.execute(INSERT, {"kind": "accepted", "error": "未配置订阅消息模板或微信"})
            await conn.execute(INSERT, {"kind": "filed", "error": "收件人不存在"})
        await asyncio.to_thread(support.alembic_upgrade, url, "0014")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT kind, status, last_error FROM notifications ORDER BY id")
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("accepted", "pending", None),
        ("filed", "skipped", "收件人不存在"),  # a missing recipient stays final
    ]
