"""The PDF renderer alone, on hostile and heavy dossiers (no database): long
unbroken notes, markup and control characters, many events and images, and
several renders at once in threads."""

from __future__ import annotations

import io
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image
from pypdf import PdfReader

from app.complaints.schemas import ItemBrief, UnitBrief
from app.ledger.dossier import Dossier, SignoffSlot, Verification
from app.ledger.evidence import MediaEntry
from app.ledger.pdf import render
from app.media.integrity import MediaCheck
from app.models.enums import Channel, ComplaintStatus
from app.qrcodes.service import find_cjk_font
from app.workflow.machine import Card
from app.workflow.schemas import CaseFile, EventRead, Reporter

AT = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
HOSTILE = "<b>加粗</b> & <font size=99>大</font>\x00\x07\u202e反向\ufeff 😀 "


def thumb(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (360, 270), (i * 5 % 255, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def dossier(events: int, images: int, note: str) -> Dossier:
    case = CaseFile(
        id="a" * 32,
        tracking_no="DZ20261124-000777",
        status=ComplaintStatus.in_progress,
        status_label="办理中",
        card=Card.red,
        priority=2,
        priority_flags=["elderly"],
        channel=Channel.online,
        item=ItemBrief(code="0101", name="村级财务收支未按期公开"),
        region_name="达州市通川区凤北街道双鱼湖社区",
        unit=UnitBrief(id=1, code="XZ-511702005", name="凤北街道纪工委"),
        cadre_id=7,
        accusation=False,
        received_at=AT,
        accept_due_at=AT + timedelta(days=1),
        due_at=AT + timedelta(days=9),
        version=events,
        reporter=Reporter(anonymous=False, visible=False),
        content=HOSTILE + "内容" * 1000,
        department_code="D001",
        department_region_code="511702005001",
        handler_department_code=None,
        handler_region_code=None,
        routing_trace=[HOSTILE, "村（社区）级事项 → 凤北街道纪工委"],
        result=None,
        signatures=[],
        signatures_needed=["handler"],
        events=[
            EventRead(
                seq=i,
                kind="replied",
                label="阶段性答复",
                public=True,
                actor_kind="staff",
                actor_id=7,
                from_status="in_progress",
                to_status="in_progress",
                note=note,
                public_reply=HOSTILE,
                data={},
                at=AT + timedelta(minutes=i),
            )
            for i in range(1, events + 1)
        ],
        media=[],
    )
    check = MediaCheck("m", "k", "0" * 64, "0" * 64, 10, None)
    return Dossier(
        case=case,
        tz=ZoneInfo("Asia/Shanghai"),
        generated_at=AT,
        reader="张三",
        names={7: "李四" + HOSTILE},
        department="农村经营管理站",
        handler_department=None,
        events=[],
        ratings=[],
        callbacks=[],
        orders=[],
        signoff=[SignoffSlot("handler", "承办人", None, None)],
        verification=Verification(case.id, case.tracking_no, events, "f" * 64, *[None] * 4),
        font=find_cjk_font(None),
        media=[
            MediaEntry(f"{i:032x}", "image", "image/jpeg", 10, AT, check, thumbnail=thumb(i))
            for i in range(images)
        ],
    )


def test_hostile_text_prints_as_text_and_an_unbroken_4000_character_note_flows(
    tmp_path: Path,
) -> None:
    out = tmp_path / "hostile.pdf"
    render(dossier(3, 1, "长" * 4000), out)
    reader = PdfReader(out)
    text = "".join(p.extract_text() or "" for p in reader.pages)
    assert "<b>加粗</b>" in text and "<font size=99>" in text  # escaped, not interpreted
    assert "\x07" not in text and "\u202e" not in text
    assert len(reader.pages) >= 4  # three 4,000-character notes flow across pages


def test_a_heavy_dossier_renders_in_bounded_memory(tmp_path: Path) -> None:
    """300 events with 500-character notes and 60 thumbnails (48 printed)."""
    tracemalloc.start()
    started = time.perf_counter()
    render(dossier(300, 60, "说明" * 250), tmp_path / "heavy.pdf")
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pages = len(PdfReader(tmp_path / "heavy.pdf").pages)
    size = (tmp_path / "heavy.pdf").stat().st_size
    print(f"\nheavy dossier: {pages} pages, {size >> 10} KB, {seconds:.1f} s, peak {peak >> 20} MB")
    text = "".join(p.extract_text() or "" for p in PdfReader(tmp_path / "heavy.pdf").pages)
    assert "另有 12 张图片未在此列出" in text
    assert peak < 100 * 1024 * 1024  # time is printed: the machine is shared, not asserted


def test_renders_in_parallel_threads_do_not_mix(tmp_path: Path) -> None:
    """The route renders in a worker thread: two dossiers at once stay apart."""
    docs = {f"c{i}": dossier(20 + i, 2, f"第{i}卷" * 50) for i in range(4)}
    for i, d in enumerate(docs.values()):
        d.case.tracking_no = f"DZ20261124-00010{i}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda kv: render(kv[1], tmp_path / f"{kv[0]}.pdf"), docs.items()))
    for i, name in enumerate(docs):
        text = "".join(p.extract_text() or "" for p in PdfReader(tmp_path / f"{name}.pdf").pages)
        assert f"DZ20261124-00010{i}" in text and f"第{i}卷" in text
        assert all(f"第{j}卷" not in text for j in range(4) if j != i)
