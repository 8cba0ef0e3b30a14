"""Filing and following a complaint, from the resident's side."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import CitizenToken
from app.complaints import events, identity, repository
from app.complaints.schemas import (
    ComplaintDetail,
    ComplaintSummary,
    MediaLink,
    SupplementCreate,
)
from app.core.config import Settings
from app.core.errors import Conflict, NotFound
from app.core.ratelimit import enforce, ip_bucket
from app.core.shared import SharedStore
from app.core.storage import MediaStore
from app.disclosures import views as disclosure_views
from app.media import service as media_service
from app.media.dependencies import Uploader
from app.models import Citizen, ComplaintEvent, Media
from app.moderation import service as moderation
from app.routing import refcache
from app.workflow.machine import CardThresholds

# The names a case's view shows beside it: item, region, supervision unit.
Names = tuple[str, str, str]
# A timeline entry's fields (``TimelineEntry``), validated with the whole answer.
Entry = dict[str, Any]

QUERY_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
EVENT_LABELS = {
    "filed": "已提交",
    "accepted": "已受理",
    "rejected": "不予受理",
    "assigned": "已分派承办",
    "transferred": "已转职能部门办理",
    "escalated": "已上报上级",
    "replied": "阶段性答复",
    "extended": "办理期限延长",
    "resolved": "已办结",
    "signed": "会签",
    "closed": "已销号",
    "reopened": "重新办理",
    "reclassified": "更正事项分类",
    "supplemented": "群众补充材料",
    "rated": "满意度评价",
    "identity_viewed": "查看反映人身份",
    "routed": "系统分流",
    "supervision_order": "下发督办单",
    "extension_requested": "申请延期",
    "callback": "回访",
    "merged": "并件办理",
    "merge_received": "相同问题并入",
    "unmerged": "撤销并件",
    "unmerge_received": "撤销并件",
    "imported": "历史件补录",
}


# Kinds whose note is written for the resident: their own steps (filed,
# supplemented, rated), the system's closing line, and, in events written
# before ``public_reply`` existed, the three actions whose note was the public
# text (reject reason, reply, result). Every other kind's note is internal.
NOTE_IS_PUBLIC = frozenset(
    {"filed", "supplemented", "rated", "closed", "rejected", "replied", "resolved"}
)


def public_text(event: ComplaintEvent) -> str:
    """What the resident's timeline shows for a public event.

    A staff action's event carries its public reply in ``data`` (inside the
    hash chain) and its internal note in ``note``; the reply is shown, the
    note never is. Events without the key keep the meaning they were written
    with: the note shows only for the kinds in ``NOTE_IS_PUBLIC``, so an old
    escalation, transfer or extension reason stays internal.
    """
    data = event.data or {}
    if "public_reply" in data:
        return str(data["public_reply"] or "")
    return event.note if event.kind in NOTE_IS_PUBLIC else ""


class ComplaintNotFound(NotFound):
    code = "complaint_not_found"


class ComplaintClosed(Conflict):
    code = "complaint_closed"


def thresholds(settings: Settings) -> CardThresholds:
    return CardThresholds(
        yellow=settings.card_yellow_fraction, orange=settings.card_orange_fraction
    )


def new_query_code() -> str:
    """The 8-character code a resident tracks an anonymous or offline case with."""
    return "".join(secrets.choice(QUERY_CODE_ALPHABET) for _ in range(8))


def hash_query_code(complaint_id: str, code: str) -> str:
    return hashlib.sha256(f"{complaint_id}:{code.strip().upper()}".encode()).hexdigest()


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    if len(phone) >= 11:
        return phone[:3] + "****" + phone[-4:]
    return phone[:2] + "****" + phone[-2:]


async def check_media(
    session: AsyncSession,
    media_ids: Sequence[str],
    citizen: Citizen,
    *,
    already: Sequence[Media] = (),
) -> list[Media]:
    chosen = await media_service.claimable(session, media_ids, Uploader("citizen", citizen.id))
    media_service.check_case_limits([*already, *chosen])
    return chosen


def _summary_fields(c: repository.Case, names: Names) -> dict[str, Any]:
    item_name, region_name, unit_name = names
    return {
        "id": c.id,
        "tracking_no": c.tracking_no,
        "status": c.status,
        "status_label": c.status.label,
        "item": {"code": c.item_code, "name": item_name},
        "region_name": region_name,
        "unit_name": unit_name,
        "created_at": c.created_at,
        "due_at": c.due_at,
    }


def _summary(row: repository.SummaryRow) -> ComplaintSummary:
    c, item_name, region_name, unit_name = row
    return ComplaintSummary(**_summary_fields(c, (item_name, region_name, unit_name)))


async def mine(
    session: AsyncSession, citizen: Citizen, *, limit: int, offset: int
) -> list[ComplaintSummary]:
    return [
        _summary(r) for r in await repository.mine(session, citizen.id, limit=limit, offset=offset)
    ]


async def _assemble(
    session: AsyncSession,
    c: repository.Case,
    names: Names,
    timeline: list[Entry],
    media: Sequence[Media],
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
) -> ComplaintDetail:
    # The resident's own contact (an anonymous filing has none to show).
    filer = identity.Identity() if c.anonymous else identity.of(c)
    links: list[MediaLink] = []
    for m in media:
        u = await media_service.urls(store, settings, m, now=now)
        links.append(
            MediaLink(
                id=m.id,
                kind=m.kind,
                content_type=m.content_type,
                url=u.url,
                play_url=u.play_url,
                poster_url=u.poster_url,
                moderation=m.moderation,
                moderation_note=moderation.resident_note(m),
            )
        )
    # One validation of the whole answer, nested entries included.
    return ComplaintDetail.model_validate(
        {
            **_summary_fields(c, names),
            "content": c.content,
            "disclosure": await disclosure_views.reference(
                session, c.disclosure_id, c.disclosure_row
            ),
            "anonymous": c.anonymous,
            "contact_name": filer.name,
            "contact_phone": mask_phone(filer.phone),
            "accept_due_at": c.accept_due_at,
            "timeline": timeline,
            "media": links,
        }
    )


async def _detail(
    session: AsyncSession,
    row: repository.SummaryRow,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
    with_media: bool,
) -> ComplaintDetail:
    """The detail through the ORM, a query per part: after a supplement, and the
    reference ``tests/complaints`` holds the one-statement read to, byte for byte."""
    c = row[0]
    timeline: list[Entry] = [
        {
            "kind": e.kind,
            "label": EVENT_LABELS.get(e.kind, e.kind),
            "at": e.created_at,
            "status": e.to_status,
            "note": public_text(e),
        }
        for e in await repository.public_events(session, c.id)
    ]
    media = await repository.attached_media(session, c.id) if with_media else []
    return await _assemble(
        session, c, (row[1], row[2], row[3]), timeline, media, store, settings, now=now
    )


def _moment(value: str) -> datetime:
    """A timestamp from JSON: PostgreSQL writes an offset, SQLite naive UTC."""
    at = datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _json(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(json.loads(value) if isinstance(value, str | bytes) else value)


def _timeline(raw: Any) -> list[Entry]:
    """``public_text`` over the aggregated rows (kind, at, status, note, has reply, reply).

    Plain entries, validated with the whole answer in one pass of pydantic's
    core: an entry model built apiece (validated, or worse, constructed in
    Python) was a fifth of a tracking read's CPU. ``tests/complaints`` holds
    the answer to the ORM read's, byte for byte."""
    return [
        {
            "kind": kind,
            "label": EVENT_LABELS.get(kind, kind),
            "at": _moment(at),
            "status": to_status,
            "note": str(reply or "") if has_reply else (note if kind in NOTE_IS_PUBLIC else ""),
        }
        for kind, at, to_status, note, has_reply, reply in _json(raw)
    ]


async def _names(session: AsyncSession, settings: Settings, c: repository.CaseView) -> Names:
    """The item, village and unit names of a case, from the reference cache
    (the names are current within ``reference_cache_seconds``, as routing's
    are); from their tables when the cache has not seen one yet."""
    ref = await refcache.get(session, settings)
    item = ref.item_names.get(c.item_id)
    region = ref.regions.get(c.region_code)
    unit = ref.units_by_id.get(c.unit_id)
    if item is not None and region is not None and unit is not None:
        return item, region.name, unit.name
    found = await repository.names(session, c.item_id, c.region_code, c.unit_id)
    if found is None:  # not possible under the foreign keys; the joins it replaced found no row
        raise ComplaintNotFound("未找到该反映事项")
    return found


async def _from_row(
    session: AsyncSession,
    row: repository.DetailRow,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
    with_media: bool,
) -> ComplaintDetail:
    c, timeline_rows, media_ids = row
    names = await _names(session, settings, c)
    media: Sequence[Media] = []
    if with_media and _json(media_ids):  # rows only when there are any: a second read
        media = await repository.attached_media(session, c.id)
    return await _assemble(
        session, c, names, _timeline(timeline_rows), media, store, settings, now=now
    )


async def _owned_row(
    session: AsyncSession, complaint_id: str, citizen: Citizen
) -> repository.SummaryRow:
    row = await repository.summary(session, complaint_id) if len(complaint_id) == 32 else None
    # Someone else's case is "not found", never "forbidden": ids must not leak.
    if row is None or not identity.owned_by(row[0], citizen.id):
        raise ComplaintNotFound("未找到该反映事项")
    return row


async def detail(
    session: AsyncSession,
    complaint_id: str,
    token: CitizenToken,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
) -> ComplaintDetail:
    """The resident's own case: one SELECT with the owner and the session in its
    WHERE clause (another resident's case is "not found", never "forbidden")."""
    row = None
    if len(complaint_id) == 32:
        row = await repository.owned_detail_row(
            session,
            complaint_id=complaint_id,
            owner=token.citizen_id,
            session_id=token.session_id,
            now=now,
        )
    if row is None:
        await token.require_live(session, now)  # a dead session is a 401, not a 404
        raise ComplaintNotFound("未找到该反映事项")
    return await _from_row(session, row, store, settings, now=now, with_media=True)


TRACKS_PER_MINUTE_PER_IP = 20


async def limit_tracking(shared: SharedStore, ip: str, *, now: datetime) -> None:
    """One budget per address for every way of tracking a case (the API and
    the resident site's form count together), so guessing query codes gains
    nothing from switching doors."""
    await enforce(
        shared,
        f"track:ip:{ip_bucket(ip)}",
        limit=TRACKS_PER_MINUTE_PER_IP,
        window_seconds=60,
        now=now,
        what="查询",
    )


async def track(
    session: AsyncSession,
    tracking_no: str,
    query_code: str,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
    region_code: str | None = None,
) -> ComplaintDetail:
    """The public progress of a case for whoever holds its number and query code.

    Every failure (unknown number, wrong code, no code issued, a case of
    another village when ``region_code`` is given) is the same answer after
    the same work, so the answer cannot tell which numbers exist."""
    row = await repository.tracked_detail_row(session, tracking_no.strip().upper())
    complaint = row[0] if row is not None else None
    expected = complaint.query_code_hash if complaint is not None else None
    given = hash_query_code(complaint.id if complaint is not None else "-" * 32, query_code)
    ok = (
        hmac.compare_digest(expected or "", given)
        and complaint is not None
        and expected is not None
        and (region_code is None or complaint.region_code == region_code)
    )
    if not ok or row is None:
        raise ComplaintNotFound("编号或查询码不正确")
    return await _from_row(session, row, store, settings, now=now, with_media=False)


async def supplement(
    session: AsyncSession,
    complaint_id: str,
    citizen: Citizen,
    body: SupplementCreate,
    store: MediaStore,
    settings: Settings,
    *,
    now: datetime,
    text: moderation.TextCheck | None = None,
) -> ComplaintDetail:
    """``text``: WeChat's verdict on ``body.content``, got before this session
    began (app/moderation/dependencies.py ``judged_first``)."""
    row = await _owned_row(session, complaint_id, citizen)
    complaint = row[0]
    if not complaint.status.is_open:
        raise ComplaintClosed("该事项已办结或不予受理，无法补充；如有新情况请重新反映")
    existing = await repository.attached_media(session, complaint.id)
    media = await check_media(session, body.media_ids, citizen, already=existing)
    event = await events.append(
        session,
        complaint,
        kind="supplemented",
        public=True,
        actor_kind="citizen",
        actor_id=citizen.id,
        at=now,
        note=body.content,
        data={"media_ids": list(body.media_ids)},
    )
    media_service.attach(
        media, f"complaint:{complaint.id}", now, forget_owner=complaint.identity_protected
    )
    await session.flush()
    moderation.record_text(session, text, target=f"event:{event.id}", complaint=complaint, now=now)
    complaint.updated_at = now
    await session.flush()
    return await _detail(session, row, store, settings, now=now, with_media=True)
