"""The dossier as a printable A4 PDF in Chinese (reportlab).

The CJK font is embedded (a subset of the TrueType font the OS provides, see
``qrcodes.service.find_cjk_font``), so the file prints the same anywhere.
Only when no usable TrueType font is installed does it fall back to
reportlab's STSong-Light, a CID font the reader's viewer must supply.

Free text (content, notes, replies, comments) is printed as flowing
paragraphs rather than table cells: a table row cannot break across pages,
and a 4,000-character note would not fit on one.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import segno
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.ledger.dossier import Dossier, SignoffSlot
from app.ledger.evidence import MAX_THUMBS, MediaEntry
from app.ledger.service import CARD_CN, CHANNEL_CN, VERDICT_CN
from app.models.enums import ComplaintStatus

logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
_fonts: dict[str, str] = {}
_font_lock = threading.Lock()
# One document built at a time per process: a registered TrueType font is one
# shared object whose per-document subset state reportlab does not guard, and
# two dossiers built at once in worker threads broke each other's subsets
# (a KeyError in makeSubset, seen once in CI). Building is CPU work under the
# GIL, so serialising it costs no throughput.
_build_lock = threading.Lock()
KIND_CN = {"image": "图片", "voice": "语音", "video": "视频", "document": "文件"}
ORDER_CN = {"manual": "人工督办", "automatic": "红牌自动督办"}
METHOD_CN = {"phone": "电话回访", "visit": "上门回访", "onsite": "实地回访"}
ACCENT = colors.HexColor("#9b1c1c")
GRID = colors.HexColor("#b8b8b8")
SHADE = colors.HexColor("#f3f0ea")


def font_name(path: Path | None) -> str:
    """Register the CJK font once per process; the name to use in styles."""
    key = str(path or "")
    with _font_lock:
        if key in _fonts:
            return _fonts[key]
        name = "STSong-Light"
        if path is not None:
            try:
                pdfmetrics.registerFont(TTFont("YdtCJK", str(path), subfontIndex=0))
                name = "YdtCJK"
            except (TTFError, OSError) as exc:  # e.g. a CFF-outline OpenType collection
                logger.warning("dossier font %s unusable (%s); using STSong-Light", path, exc)
        if name == "STSong-Light":
            pdfmetrics.registerFont(UnicodeCIDFont(name))
        _fonts[key] = name
        return name


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle(
        "base", fontName=font, fontSize=10, leading=15, wordWrap="CJK", spaceAfter=2
    )
    return {
        "base": base,
        "title": ParagraphStyle(
            "title", parent=base, fontSize=24, leading=32, alignment=1, spaceAfter=4
        ),
        "subtitle": ParagraphStyle(
            "subtitle", parent=base, fontSize=12, leading=18, alignment=1, textColor=colors.grey
        ),
        "h": ParagraphStyle(
            "h",
            parent=base,
            fontSize=14,
            leading=20,
            textColor=ACCENT,
            spaceBefore=10,
            spaceAfter=5,
            keepWithNext=1,  # never a heading alone at the foot of a page
        ),
        "event": ParagraphStyle("event", parent=base, spaceBefore=5),
        "body": ParagraphStyle("body", parent=base, leftIndent=14),
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11),
        "mono": ParagraphStyle("mono", parent=base, fontSize=7.5, leading=10),
        "bad": ParagraphStyle("bad", parent=base, fontSize=8, leading=11, textColor=ACCENT),
    }


def _t(value: object) -> str:
    """Text made safe for a Paragraph: markup escaped, control characters gone."""
    return escape(_CONTROL.sub("", "" if value is None else str(value)))


def _when(at: datetime | str | None, d: Dossier) -> str:
    if at is None:
        return ""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(d.tz).strftime("%Y-%m-%d %H:%M")


def _status(value: str | None) -> str:
    try:
        return ComplaintStatus(value).label if value else ""
    except ValueError:
        return value or ""


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(n, 0) / 1024:.1f} KB"


def _grid(rows: list[list[Any]], widths: list[float], *, header: bool = False) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.5, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    style.append(
        ("BACKGROUND", (0, 0), (-1, 0), SHADE) if header else ("BACKGROUND", (0, 0), (0, -1), SHADE)
    )
    if not header and len(widths) == 4:
        style.append(("BACKGROUND", (2, 0), (2, -1), SHADE))
    table.setStyle(TableStyle(style))
    return table


def _reporter(d: Dossier) -> str:
    r = d.case.reporter
    if r.anonymous:
        return "匿名反映"
    if not r.visible:
        return "（保密）"
    return " ".join(p for p in (r.name, r.phone) if p) or "（未留联系方式）"


def _summary(d: Dossier, s: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    c = d.case
    p = s["base"]
    pairs = [
        ("编号", c.tracking_no),
        ("状态", c.status_label),
        ("来源渠道", CHANNEL_CN.get(c.channel, str(c.channel))),
        ("警示", CARD_CN.get(c.card, "") or "无"),
        ("事项", f"{c.item.code} {c.item.name}"),
        ("性质", "举报（问题线索）" if c.accusation else "诉求"),
        ("所属区域", c.region_name),
        ("承办单位", c.unit.name),
        ("职能部门", d.department),
        ("转办部门", d.handler_department or "—"),
        ("承办人", d.names.get(c.cadre_id or 0, "—") if c.cadre_id else "—"),
        ("反映人", _reporter(d)),
        ("收到时间", _when(c.received_at, d)),
        ("受理期限", _when(c.accept_due_at, d)),
        ("办理时限", _when(c.due_at, d)),
        ("优先事项", "、".join(c.priority_flags) or "—"),
    ]
    rows = []
    for i in range(0, len(pairs), 2):
        (k1, v1), (k2, v2) = pairs[i], pairs[i + 1]
        rows.append(
            [Paragraph(k1, p), Paragraph(_t(v1), p), Paragraph(k2, p), Paragraph(_t(v2), p)]
        )
    w = width / 2
    out: list[Flowable] = [_grid(rows, [22 * mm, w - 22 * mm, 22 * mm, w - 22 * mm])]
    out += [Paragraph("反映内容", s["event"]), Paragraph(_t(c.content), s["body"])]
    out += [Paragraph("办理结果", s["event"]), Paragraph(_t(c.result or "（尚未办结）"), s["body"])]
    return out


def _timeline(d: Dossier, s: dict[str, ParagraphStyle]) -> Iterable[Flowable]:
    slot_labels = {x.slot: x.label for x in d.signoff}
    for n, e in enumerate(d.case.events, 1):  # numbered as shown (seq: events.jsonl)
        move = ""
        if e.to_status and e.to_status != e.from_status:
            move = f"（{_status(e.from_status) or '—'} → {_status(e.to_status)}）"
        scope = "" if e.public else " · 内部"
        head = (
            f"<b>{n}.</b> {_t(_when(e.at, d))}　<font color='#9b1c1c'>{_t(e.label)}</font>"
            f"　{_t(d.actor(e.actor_kind, e.actor_id))}{_t(move)}{scope}"
        )
        lines = [Paragraph(head, s["event"])]
        if e.kind == "signed":
            slot = str(e.data.get("slot"))
            lines.append(Paragraph(f"会签栏：{_t(slot_labels.get(slot, slot))}", s["body"]))
        if e.public_reply:
            lines.append(Paragraph(f"答复群众：{_t(e.public_reply)}", s["body"]))
        if e.note and e.note != e.public_reply:
            label = "内容" if e.actor_kind == "citizen" else "说明"
            lines.append(Paragraph(f"{label}：{_t(e.note)}", s["body"]))
        yield from lines


def _signoff(d: Dossier, s: dict[str, ParagraphStyle], width: float) -> Table:
    p = s["base"]
    rows = [[Paragraph(x, p) for x in ("会签栏", "签字人", "签字时间")]]
    for slot in d.signoff:
        rows.append(
            [
                Paragraph(_t(slot.label), p),
                Paragraph(_signer(slot), p),
                Paragraph(_t(_when(slot.at, d)), p),
            ]
        )
    table = _grid(rows, [40 * mm, width - 90 * mm, 50 * mm], header=True)
    table.setStyle(TableStyle([("BOTTOMPADDING", (0, 1), (-1, -1), 10)]))
    return table


def _signer(slot: SignoffSlot) -> str:
    if slot.signer is None:
        return "（待签）"
    if slot.slot == "complainant":  # the resident confirms; staff record it
        return f"群众已确认（{_t(slot.signer)} 记录）"
    return _t(slot.signer)


def _ratings(d: Dossier, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    if not d.ratings:
        return [Paragraph("（暂无评价）", s["body"])]
    out: list[Flowable] = []
    for r in d.ratings:
        verdict = VERDICT_CN.get(r["satisfaction"], r["satisfaction"])
        again = "，申请重新办理" if r["reopened"] else ""
        out.append(
            Paragraph(
                f"第 {r['round'] + 1} 轮　{_t(_when(r['created_at'], d))}　{_t(verdict)}"
                f"（{r['score']} 分）{again}",
                s["event"],
            )
        )
        if r["comment"]:
            out.append(Paragraph(f"评价内容：{_t(r['comment'])}", s["body"]))
    return out


def _callbacks(d: Dossier, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    if not d.callbacks:
        return [Paragraph("（无回访记录）", s["body"])]
    out: list[Flowable] = []
    for cb in d.callbacks:
        if cb["done_at"] is None:
            out.append(Paragraph("已抽取，待回访", s["event"]))
            continue
        parts = [METHOD_CN.get(cb["method"] or "", cb["method"] or "回访")]
        parts.append("已联系上" if cb["reached"] else "未联系上")
        if cb["resolved"] is not None:
            parts.append("问题已解决" if cb["resolved"] else "问题未解决")
        if cb["satisfaction"]:
            parts.append(VERDICT_CN.get(cb["satisfaction"], cb["satisfaction"]))
        if cb["fake_closure"]:
            parts.append("认定虚假办结")
        who = f"　回访人：{_t(cb['staff'])}" if cb["staff"] else ""
        line = f"{_t(_when(cb['done_at'], d))}　{_t('，'.join(parts))}{who}"
        out.append(Paragraph(line, s["event"]))
        if cb["note"]:
            out.append(Paragraph(f"记录：{_t(cb['note'])}", s["body"]))
    return out


def _orders(d: Dossier, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    if not d.orders:
        return [Paragraph("（无督办单）", s["body"])]
    out: list[Flowable] = []
    for o in d.orders:
        who = _t(o["issued_by"]) if o["issued_by"] else "系统"
        due = f"，限 {_t(_when(o['deadline_at'], d))} 前办结" if o["deadline_at"] else ""
        kind = ORDER_CN.get(o["kind"], _t(o["kind"]))
        head = f"{_t(_when(o['created_at'], d))}　{kind}　下发：{who}{due}"
        out += [Paragraph(head, s["event"]), Paragraph(f"督办事由：{_t(o['reason'])}", s["body"])]
    return out


def _thumbs(d: Dossier, s: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    shown = [(i, m) for i, m in enumerate(d.media, 1) if m.thumbnail][:MAX_THUMBS]
    if not shown:
        return []
    cols, cell = 3, width / 3
    cells: list[Any] = []
    for i, m in shown:
        w, h = ImageReader(io.BytesIO(m.thumbnail or b"")).getSize()
        scale = min((cell - 8 * mm) / w, 55 * mm / h)
        img = Image(io.BytesIO(m.thumbnail or b""), width=w * scale, height=h * scale)
        what = "（视频首帧）" if m.kind == "video" else ""
        cells.append([img, Paragraph(f"第 {i} 项{what}", s["small"])])
    rows = [cells[i : i + cols] for i in range(0, len(cells), cols)]
    rows[-1] += [""] * (cols - len(rows[-1]))
    table = Table(rows, colWidths=[cell] * cols, hAlign="LEFT")
    table.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")])
    )
    out: list[Flowable] = [table]
    rest = sum(1 for m in d.media if m.thumbnail) - len(shown)
    if rest > 0:
        out.append(Paragraph(f"另有 {rest} 张图片未在此列出，见压缩包 media/ 目录。", s["small"]))
    return out


def _media_list(d: Dossier, s: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    withheld = (
        [
            Paragraph(
                f"另有 {d.media_withheld} 件影像资料正在内容安全检测或未通过检测，未装卷。",
                s["small"],
            )
        ]
        if d.media_withheld
        else []
    )
    if not d.media:
        return [Paragraph("（本案无影像资料）", s["body"]), *withheld]
    p, mono = s["small"], s["mono"]
    rows: list[list[Any]] = [
        [Paragraph(x, p) for x in ("序号", "类型", "大小", "SHA-256（登记值）", "校验")]
    ]
    for i, m in enumerate(d.media, 1):
        rows.append(
            [
                Paragraph(str(i), p),
                Paragraph(f"{KIND_CN.get(m.kind, _t(m.kind))}<br/>{_t(m.id[:8])}", p),
                Paragraph(_size(m.size), p),
                Paragraph(_t(m.check.expected_sha256 or "（未登记）"), mono),
                Paragraph(_t(_verdict(m)), p if m.check.ok else s["bad"]),
            ]
        )
    return [
        _grid(rows, [10 * mm, 18 * mm, 17 * mm, width - 77 * mm, 32 * mm], header=True),
        *withheld,
    ]


def _verdict(m: MediaEntry) -> str:
    if m.check.problem == "mismatch":
        return f"哈希不符，未装卷。实际：{m.check.actual_sha256}"
    if m.check.problem == "missing":
        return "文件缺失，未装卷"
    return m.check.describe()


def _verification(d: Dossier, s: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    v, p, mono = d.verification, s["small"], s["mono"]
    rows: list[list[Any]] = [
        [
            Paragraph("哈希链最新事件", p),
            Paragraph(f"第 {v.head_seq} 号事件<br/>{_t(v.head_hash)}", mono),
        ]
    ]
    if v.checkpoint is None:
        rows.append(
            [Paragraph("检查点", p), Paragraph("尚无检查点覆盖本案，将由下一次定期检查点锚定。", p)]
        )
    else:
        cp = v.checkpoint
        later = v.head_seq - (v.anchored_seq or 0)
        tail = f"（其后 {later} 个事件待下一检查点锚定）" if later > 0 else "（即最新事件）"
        where = f"第 {cp['seq']} 号检查点，{_t(_when(cp['created_at'], d))}"
        anchored = f"第 {v.anchored_seq} 号事件{tail}<br/>{_t(v.anchored_hash)}"
        rows += [
            [Paragraph("所在检查点", p), Paragraph(f"{where}，签名密钥 {_t(cp['key_id'])}", p)],
            [Paragraph("检查点根哈希", p), Paragraph(_t(cp["root"]), mono)],
            [Paragraph("锚定的链头", p), Paragraph(anchored, mono)],
        ]
    qr = segno.make(v.qr_payload(), error="m", micro=False)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=4, border=2)
    buf.seek(0)
    code = Image(buf, width=42 * mm, height=42 * mm)
    info = _grid(rows, [26 * mm, width - 26 * mm - 48 * mm])
    block = Table([[info, code]], colWidths=[width - 48 * mm, 48 * mm], hAlign="LEFT")
    block.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    note = (
        "二维码内容为本卷的案件编号、哈希链最新事件及所在检查点（JSON）。完整的 Merkle 证明、"
        "检查点签名与事件哈希见压缩包 verification.json、events.jsonl，可用 ydt audit verify 核验。"
    )
    heading = Paragraph("九、验证信息", s["h"])  # kept with the block it titles
    return [KeepTogether([heading, block, Spacer(1, 2 * mm), Paragraph(note, p)])]


def _on_page(d: Dossier, font: str) -> Any:
    stamp = f"导出人：{d.reader}　导出时间：{_when(d.generated_at, d)}　内部资料，注意保密"

    def draw(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        w, h = A4
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(doc.leftMargin, h - 12 * mm, "监督一点通 · 一案一卷")
        canvas.drawRightString(w - doc.rightMargin, h - 12 * mm, d.case.tracking_no)
        canvas.setStrokeColor(GRID)
        canvas.line(doc.leftMargin, h - 13.5 * mm, w - doc.rightMargin, h - 13.5 * mm)
        canvas.drawString(doc.leftMargin, 10 * mm, stamp)
        canvas.drawRightString(w - doc.rightMargin, 10 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    return draw


def render(d: Dossier, out: Path) -> None:
    """Write the dossier PDF to ``out`` (CPU work: call from a thread)."""
    font = font_name(d.font)
    s = _styles(font)
    doc = SimpleDocTemplate(
        str(out),
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=20 * mm,
        bottomMargin=18 * mm,
        title=f"一案一卷 {d.case.tracking_no}",
        author="监督一点通",
        subject="案件卷宗",
        creator="监督一点通",
    )
    width = doc.width
    story: list[Flowable] = [
        Paragraph("一案一卷", s["title"]),
        Paragraph(f"案件卷宗　{_t(d.case.tracking_no)}", s["subtitle"]),
        Spacer(1, 6 * mm),
        Paragraph("一、案件概要", s["h"]),
        *_summary(d, s, width),
        Paragraph("二、分流轨迹", s["h"]),
        *[
            Paragraph(f"{i}. {_t(line)}", s["body"])
            for i, line in enumerate(d.case.routing_trace, 1)
        ],
        Paragraph("三、办理过程", s["h"]),
        *_timeline(d, s),
        Paragraph("四、会签销号", s["h"]),
        _signoff(d, s, width),
        Paragraph("五、满意度评价", s["h"]),
        *_ratings(d, s),
        Paragraph("六、回访记录", s["h"]),
        *_callbacks(d, s),
        Paragraph("七、督办单", s["h"]),
        *_orders(d, s),
        Paragraph("八、影像资料", s["h"]),
        *_thumbs(d, s, width),
        Spacer(1, 3 * mm),
        *_media_list(d, s, width),
        *_verification(d, s, width),
    ]
    page = _on_page(d, font)
    with _build_lock:
        doc.build(story, onFirstPage=page, onLaterPages=page)
