"""scripts/run.sh prints the console's address and every demo account."""

from __future__ import annotations

from app.reference.demo import DEMO_STAFF, guide


def test_the_guide_names_the_console_and_every_demo_account() -> None:
    text = guide("http://127.0.0.1:8000", "Demo#2026")
    assert "http://127.0.0.1:8000/console/" in text and "Demo#2026" in text
    for username, _, name, _, _ in DEMO_STAFF:
        line = next(x for x in text.splitlines() if x.strip().startswith(username + " "))
        assert name in line and "—" in line
    assert "回访抽查" in next(x for x in text.splitlines() if "tongchuan.jw" in x)
    assert "回访抽查" not in next(x for x in text.splitlines() if "fengbei.zhang" in x)
