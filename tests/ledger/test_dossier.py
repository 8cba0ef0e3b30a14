"""One case, one file (issue 13, items 8–9): the printable PDF and the zip.

The PDF is opened with pypdf (text extracted) and rendered to PNG with
pypdfium2; the pages are saved to the folder the test prints, and the QR
code is read back from the rendered page with zxing-cpp.
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from httpx import AsyncClient
from PIL import Image, ImageDraw
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.storage.local import LocalMediaStore
from app.models import ComplaintEvent, Media
from app.models.enums import StaffRole
from tests import mediafiles
from tests.audit.helpers import make_checkpoint
from tests.factories import login, make_staff
from tests.identity.helpers import accuse, anonymous, resident
from tests.stats.scenario import Staff, close, rate, staff
from tests.workflow.helpers import act, case, citizen, file_case

pytestmark = pytest.mark.usefixtures("seeded")

NAME, PHONE = "欧阳秋菊", "13512345678"
HEADINGS = ("一案一卷", "案件概要", "分流轨迹", "办理过程", "会签销号", "满意度评价")
HEADINGS += ("回访记录", "督办单", "影像资料", "验证信息")


@functools.cache
def pages_dir() -> Path:
    """YDT_SCREENSHOT_DIR, or a fresh temporary folder; printed by the tests."""
    configured = os.environ.get("YDT_SCREENSHOT_DIR")
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="ydt-dossier-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def photo(sun: tuple[int, int, int] = (250, 210, 60)) -> bytes:
    """A photo with something on it, so a thumbnail is visibly a thumbnail."""
    img = Image.new("RGB", (640, 480), (70, 130, 180))
    draw = ImageDraw.Draw(img)
    draw.rectangle((60, 260, 580, 440), fill=(90, 160, 60))
    draw.ellipse((420, 40, 540, 160), fill=sun)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)


def render(data: bytes, name: str) -> list[Path]:
    out = pages_dir()
    doc = pdfium.PdfDocument(data)
    paths = []
    for i in range(len(doc)):
        path = out / f"{name}-p{i + 1}.png"
        doc[i].render(scale=2).to_pil().save(path)
        paths.append(path)
    print(f"\ndossier pages: {out}")
    return paths


def zip_text(data: bytes) -> str:
    """Every member of the zip as text (the PDF through its extracted text)."""
    parts = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for n in zf.namelist():
            raw = zf.read(n)
            parts.append(pdf_text(raw) if n.endswith(".pdf") else raw.decode("utf-8", "replace"))
            parts.append(raw.decode("latin-1"))
    return "\n".join(parts)


async def upload(
    client: AsyncClient, h: dict[str, str], data: bytes, name: str, kind: str = "image"
) -> str:
    r = await client.post(
        "/api/v1/media", headers=h, data={"kind": kind}, files={"file": (name, data)}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def worked(client: AsyncClient, s: Staff, r: dict[str, str]) -> dict[str, Any]:
    """A closed, rated, drawn-and-called-back case with a supervision order."""
    filed = await file_case(client, r, media_ids=[await upload(client, r, photo(), "a.jpg")])
    order = await client.post(
        "/api/v1/staff/supervision-orders",
        headers=s.county,
        json={"complaint_id": filed["id"], "reason": "群众反映强烈，请三日内办结"},
    )
    assert order.status_code == 201, order.text
    await close(client, s, filed["id"])
    await rate(client, r, filed["id"], 4, "basic")
    d = await client.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=s.county)
    assert d.status_code == 201, d.text
    listed = await client.get(
        f"/api/v1/staff/callbacks?draw_id={d.json()['draw_id']}", headers=s.county
    )
    drawn = [cb for cb in listed.json()["items"] if cb["complaint_id"] == filed["id"]]
    for cb in drawn:
        done = await client.post(
            f"/api/v1/staff/callbacks/{cb['id']}",
            headers=s.county,
            json={
                "method": "phone",
                "reached": True,
                "resolved": True,
                "satisfaction": "satisfied",
            },
        )
        assert done.status_code == 200, done.text
    return filed


async def test_the_pdf_opens_reads_and_carries_its_verification(
    client: AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "dz.resident")
    filed = await worked(client, s, r)
    cp = await make_checkpoint(session)
    resp = await client.get(f"/api/v1/staff/complaints/{filed['id']}/dossier.pdf", headers=s.zhang)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''" in resp.headers["content-disposition"]
    reader = PdfReader(io.BytesIO(resp.content))
    assert reader.pages[0].mediabox.width == pytest.approx(595.27, abs=1)  # A4
    fonts = [
        f.get_object()
        for page in reader.pages
        for f in page["/Resources"]["/Font"].values()  # type: ignore[index]
    ]
    embedded = [f for f in fonts if "/FontFile2" in f.get("/FontDescriptor", {})]
    assert embedded, "the CJK font is embedded (reportlab subsets it as TrueType)"
    text = pdf_text(resp.content)
    for heading in HEADINGS:
        assert heading in text, heading
    assert filed["tracking_no"] in text
    stored = (await session.execute(select(Media))).scalars().all()
    sha = next(m.sha256 for m in stored if m.attached_to == f"complaint:{filed['id']}")
    assert sha and sha in text.replace("\n", "")
    for line in ("群众反映强烈，请三日内办结", "已督促整改并公开", "电话确认", "基本满意（4 分）"):
        assert line in text, line
    assert "st.wang" in text and "st.chen" in text  # who signed the leaders' slots
    assert "（待签）" not in text  # a closed case has every slot signed
    assert "139****1111" in text or "13900001111" in text  # an ordinary case: the filer shows
    pages = render(resp.content, "closed")
    assert Image.open(pages[0]).size[0] > 1000
    found = [
        json.loads(code.text)
        for p in pages
        for code in zxingcpp.read_barcodes(Image.open(p))
        if code.text.startswith("{")
    ]
    assert len(found) == 1, "one QR code, on the verification block"
    qr = found[0]
    head = (
        (
            await session.execute(
                select(ComplaintEvent)
                .where(ComplaintEvent.complaint_id == filed["id"])
                .order_by(ComplaintEvent.seq.desc())
            )
        )
        .scalars()
        .first()
    )
    assert head is not None
    assert qr["no"] == filed["tracking_no"] and qr["head"] == [head.seq, head.hash]
    assert qr["cp"] == [cp.seq, cp.root]
    assert qr["anchored"][0] <= head.seq and cp.root in text.replace("\n", "")


async def test_the_zip_holds_the_pdf_beside_the_machine_readable_files(
    client: AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    s = await staff(client, connection)
    filed = await worked(client, s, await citizen(client, "dz.zip"))
    await make_checkpoint(session)
    resp = await client.get(f"/api/v1/staff/complaints/{filed['id']}/dossier.zip", headers=s.zhang)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(resp.content))
    names = set(z.namelist())
    pdf_name = f"一案一卷-{filed['tracking_no']}.pdf"
    expected = {"case.json", "events.jsonl", "ratings.json", "callbacks.json"}
    expected |= {"supervision_orders.json", "media_manifest.json", "verification.json", pdf_name}
    assert expected <= names
    assert filed["tracking_no"] in pdf_text(z.read(pdf_name))
    manifest = json.loads(z.read("media_manifest.json"))
    assert [m["check"] for m in manifest] == ["ok"]
    packed = z.read(manifest[0]["file"])
    import hashlib

    assert hashlib.sha256(packed).hexdigest() == manifest[0]["recorded_sha256"]
    v = json.loads(z.read("verification.json"))
    events = [json.loads(x) for x in z.read("events.jsonl").decode().splitlines()]
    assert v["head"]["hash"] == events[-1]["hash"] or v["head"]["seq"] > events[-1]["seq"]
    assert v["checkpoint"] is not None and v["proof"]["seq"] == v["anchored"]["seq"]
    assert json.loads(z.read("supervision_orders.json"))[0]["kind"] == "manual"
    assert json.loads(z.read("callbacks.json"))[0]["reached"] is True


async def test_an_accuser_is_nowhere_in_a_handlers_dossier_and_a_read_is_recorded(
    client: AsyncClient, connection: AsyncConnection, session: AsyncSession
) -> None:
    s = await staff(client, connection)
    accuser = await resident(client, "dz.accuser")
    acc = await accuse(client, accuser, name=NAME, phone=PHONE)
    v = (await case(client, s.zhang, acc["id"]))["version"]
    for action in ("accept", "transfer"):
        moved = await act(client, s.zhang, acc["id"], action, v)
        assert moved.status_code == 200, moved.text
        v = moved.json()["version"]
    file = await case(client, s.zhang, acc["id"])
    await make_staff(
        connection,
        "dz.handler",
        StaffRole.handler,
        department_code=file["handler_department_code"],
        region_code=file["handler_region_code"],
    )
    handler = await login(client, "dz.handler")
    base = f"/api/v1/staff/complaints/{acc['id']}/dossier"
    pdf = await client.get(f"{base}.pdf", headers=handler)
    zipped = await client.get(f"{base}.zip", headers=handler)
    assert pdf.status_code == 200 and zipped.status_code == 200
    text = pdf_text(pdf.content)
    render(pdf.content, "handler-accusation")
    assert acc["tracking_no"] in text and "（保密）" in text
    everything = text + zip_text(zipped.content)
    for secret in (NAME, PHONE, accuser.openid):
        assert secret not in everything, secret
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        logged = [json.loads(x) for x in zf.read("events.jsonl").decode().splitlines()]
        listed = json.loads(zf.read("case.json"))["events"]
    citizens = [e for e in [*logged, *listed] if e["actor_kind"] == "citizen"]
    assert citizens and all(e["actor_id"] is None for e in citizens)

    async def reads() -> list[ComplaintEvent]:
        rows = await session.execute(
            select(ComplaintEvent).where(
                ComplaintEvent.complaint_id == acc["id"], ComplaintEvent.kind == "identity_viewed"
            )
        )
        return list(rows.scalars())

    vias = [e.data["via"] for e in await reads()]
    assert "dossier" not in vias  # the handler saw nothing, so nothing was read
    shown = await client.get(f"{base}.pdf", headers=s.zhang)
    assert NAME in pdf_text(shown.content)  # the supervision side may see an accuser
    assert [e.data["via"] for e in await reads()] == [*vias, "dossier"]  # ...and it is audited


async def test_an_anonymous_filer_is_hidden_from_every_role(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    hidden = await resident(client, "dz.anon")
    filed = await anonymous(client, hidden)
    for who in (s.zhang, s.county):
        resp = await client.get(f"/api/v1/staff/complaints/{filed['id']}/dossier.pdf", headers=who)
        assert resp.status_code == 200
        text = pdf_text(resp.content)
        assert "匿名反映" in text and hidden.openid not in text


async def test_a_tampered_media_object_is_reported_not_packed(
    client: AsyncClient,
    connection: AsyncConnection,
    session: AsyncSession,
    local_store: LocalMediaStore,
) -> None:
    s = await staff(client, connection)
    r = await citizen(client, "dz.tamper")
    good_id = await upload(client, r, photo(), "good.jpg")
    bad_id = await upload(client, r, photo(sun=(240, 120, 40)), "bad.jpg")
    voice_id = await upload(client, r, mediafiles.wav(), "v.wav", "voice")
    video_id = await upload(client, r, mediafiles.mp4(), "v.mp4", "video")
    gone_id = await upload(client, r, photo(sun=(20, 20, 20)), "gone.jpg")
    filed = await file_case(client, r, media_ids=[good_id, bad_id, voice_id, video_id, gone_id])
    row, gone = await session.get(Media, bad_id), await session.get(Media, gone_id)
    assert row is not None and gone is not None
    local_store.path_for(row.storage_key).write_bytes(photo()[:-40] + b"\x00" * 40)
    local_store.path_for(gone.storage_key).unlink()
    base = f"/api/v1/staff/complaints/{filed['id']}/dossier"
    pdf = await client.get(f"{base}.pdf", headers=s.zhang)
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    render(pdf.content, "tampered")
    assert "哈希不符" in text and "未装卷" in text and "校验一致" in text
    assert "文件缺失" in text and "语音" in text and "视频" in text
    pictures = [i for p in PdfReader(io.BytesIO(pdf.content)).pages for i in p.images]
    thumbs = [i for i in pictures if i.name.endswith(".jpg")]  # the QR code is a PNG
    assert len(thumbs) == 2  # the good photo and the video's poster: nothing of the tampered one
    z = zipfile.ZipFile(io.BytesIO((await client.get(f"{base}.zip", headers=s.zhang)).content))
    manifest = {m["id"]: m for m in json.loads(z.read("media_manifest.json"))}
    assert manifest[good_id]["check"] == "ok" and manifest[good_id]["file"] in z.namelist()
    assert manifest[bad_id]["check"] == "mismatch" and manifest[bad_id]["file"] is None
    assert manifest[bad_id]["actual_sha256"] != manifest[bad_id]["recorded_sha256"]
    assert not [n for n in z.namelist() if bad_id in n or gone_id in n]
    assert manifest[gone_id]["check"] == "missing" and manifest[gone_id]["file"] is None
    for ok in (voice_id, video_id):
        assert manifest[ok]["check"] == "ok" and manifest[ok]["file"] in z.namelist()
    await session.refresh(row)
    assert row.integrity_failed_at is not None  # flagged: it can no longer be attached


async def test_a_case_outside_the_readers_scope_is_404(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    s = await staff(client, connection)
    await make_staff(connection, "dz.other", StaffRole.supervisor, unit_code="XZ-511702001")
    other = await login(client, "dz.other")
    filed = await file_case(client, await citizen(client, "dz.scope"))
    for ext in ("pdf", "zip"):
        base = "/api/v1/staff/complaints/"
        assert (
            await client.get(f"{base}{filed['id']}/dossier.{ext}", headers=other)
        ).status_code == 404
        assert (
            await client.get(f"{base}{'f' * 32}/dossier.{ext}", headers=s.zhang)
        ).status_code == 404
        assert (await client.get(f"{base}{filed['id']}/dossier.{ext}")).status_code == 401


async def test_a_pending_callback_is_shown_to_the_drawing_commission_only(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    """A unit that knew its case was drawn could coach the resident."""
    s = await staff(client, connection)
    filed = await file_case(client, await citizen(client, "dz.drawn"))
    await close(client, s, filed["id"])
    d = await client.post("/api/v1/staff/callbacks/draw?quarter=2026Q4", headers=s.county)
    assert d.status_code == 201, d.text
    base = f"/api/v1/staff/complaints/{filed['id']}/dossier"
    unit = zipfile.ZipFile(io.BytesIO((await client.get(f"{base}.zip", headers=s.zhang)).content))
    assert json.loads(unit.read("callbacks.json")) == []
    unit_pdf = pdf_text((await client.get(f"{base}.pdf", headers=s.zhang)).content)
    assert "（无回访记录）" in unit_pdf and "待回访" not in unit_pdf
    drawn = await client.get(f"{base}.zip", headers=s.county)
    drawer = zipfile.ZipFile(io.BytesIO(drawn.content))
    assert [cb["done_at"] for cb in json.loads(drawer.read("callbacks.json"))] == [None]
    assert "已抽取，待回访" in pdf_text((await client.get(f"{base}.pdf", headers=s.county)).content)
