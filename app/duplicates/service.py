"""Duplicate detection: hints before filing, following, staff lists and merges.

A merge closes the child as a duplicate of the parent through the one
transition table (open → closed, and closed → reopened to unmerge), with the
same conditional version UPDATE as every staff action, an event in both
chains, and a ``merged`` event the statistics fold reads so the child stops
counting (``app/stats/rollup.py``). The child's complainant then receives the
parent's notices through ``notifications.to_followers``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import state as audit_state
from app.complaints import events, identity
from app.complaints.schemas import ItemBrief
from app.complaints.service import EVENT_LABELS, ComplaintNotFound
from app.complaints.summary import public_summary
from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, Forbidden
from app.duplicates import repository
from app.duplicates.schemas import (
    CaseRef,
    DuplicateCandidate,
    DuplicateList,
    FollowState,
    MergeRequest,
    MergeResult,
    Progress,
    SimilarCase,
    SimilarQuery,
    SimilarResponse,
    UnmergeRequest,
)
from app.duplicates.similarity import box, distance_m, similarity
from app.models import Citizen, Complaint, ComplaintFollow, ComplaintMerge, StaffUser
from app.models.enums import ComplaintStatus, RegionLevel
from app.notifications import service as notify
from app.regions import service as regions_service
from app.workflow import queue, scope
from app.workflow import service as workflow_service
from app.workflow.machine import transition_to

PROMPT = "是否已有人反映？可关注该问题，办理进展会同步通知您"
HINTS = 5
SUMMARY_CHARS = 80
STAFF_LIST = 20


def _related(item_code: str | None) -> list[ColumnElement[bool]]:
    """The same item or another item of its category."""
    return [Complaint.item_code.startswith(item_code[:2])] if item_code else []


async def similar(
    session: AsyncSession,
    citizen: Citizen,
    body: SimilarQuery,
    *,
    settings: Settings,
    now: datetime,
) -> SimilarResponse:
    village = (await regions_service.get_chain(session, body.region_code))[-1]
    if village.level is not RegionLevel.village:
        raise BadRequest(f"请选择具体的村（社区），{village.name} 是{village.level.label}区划")
    loc = body.location
    bounds = box(loc.lat, loc.lng, settings.duplicate_radius_m) if loc else None
    rows = await repository.candidates(
        session,
        *repository.public_open(now - timedelta(days=settings.duplicate_window_days)),
        *_related(body.item_code),
        repository.near(village.code, bounds),
        or_(Complaint.citizen_id.is_(None), Complaint.citizen_id != citizen.id),
    )
    kept = [
        row
        for row in rows
        if row[0].region_code == village.code
        or (loc is not None and _within(row[0], loc.lat, loc.lng, settings))
    ]
    # Tokenising is CPU work: off the event loop.
    sims = await asyncio.to_thread(lambda: [similarity(body.content, r[0].content) for r in kept])
    scored = [
        (s + (0.05 if row[0].item_code == body.item_code else 0.0), row)
        for s, row in zip(sims, kept, strict=True)
        if s >= settings.duplicate_threshold
    ]
    scored.sort(key=lambda x: (-x[0], x[1][0].id))
    top = scored[:HINTS]
    ids = [r[0].id for _, r in top]
    latest = await repository.latest_public_events(session, ids)
    counts = await repository.follower_counts(session, ids)
    mine = await repository.followed_by(session, citizen.id, ids)
    items = []
    for s, (c, item_name, region_name) in top:
        e = latest.get(c.id)
        items.append(
            SimilarCase(
                id=c.id,
                tracking_no=c.tracking_no,
                item=ItemBrief(code=c.item_code, name=item_name),
                region_name=region_name,
                status=c.status,
                status_label=c.status.label,
                summary=public_summary(c.content, limit=SUMMARY_CHARS),
                progress=Progress(label=EVENT_LABELS.get(e.kind, e.kind), at=e.created_at)
                if e
                else None,
                created_at=c.created_at,
                similarity=round(min(s, 1.0), 4),
                followers=counts.get(c.id, 0),
                following=c.id in mine,
            )
        )
    return SimilarResponse(items=items, prompt=PROMPT)


def _within(c: Complaint, lat: float | None, lng: float | None, settings: Settings) -> bool:
    if lat is None or lng is None or c.location_lat is None or c.location_lng is None:
        return False
    return distance_m(lat, lng, c.location_lat, c.location_lng) <= settings.duplicate_radius_m


async def _followable(session: AsyncSession, complaint_id: str) -> Complaint:
    """A case other residents may see and follow; anything else is 'not found'."""
    c = await session.get(Complaint, complaint_id) if len(complaint_id) == 32 else None
    if c is None or c.identity_protected or not c.status.is_open:
        raise ComplaintNotFound("未找到该反映事项")
    return c


async def follow(
    session: AsyncSession, citizen: Citizen, complaint_id: str, *, now: datetime
) -> FollowState:
    c = await _followable(session, complaint_id)
    if identity.owned_by(c, citizen.id):
        raise BadRequest("这是您本人反映的事项，办理进展会直接通知您")
    if await repository.find_follow(session, c.id, citizen.id) is None:
        try:
            async with session.begin_nested():
                session.add(
                    ComplaintFollow(complaint_id=c.id, citizen_id=citizen.id, created_at=now)
                )
        except IntegrityError:
            pass  # a double tap raced us: following either way
    return await _state(session, c.id, citizen.id)


async def unfollow(session: AsyncSession, citizen: Citizen, complaint_id: str) -> FollowState:
    if await repository.find_follow(session, complaint_id, citizen.id) is None:
        await _followable(session, complaint_id)  # unknown cases stay unknown
    await repository.unfollow(session, complaint_id, citizen.id)
    return await _state(session, complaint_id, citizen.id)


async def _state(session: AsyncSession, complaint_id: str, citizen_id: int) -> FollowState:
    counts = await repository.follower_counts(session, [complaint_id])
    mine = await repository.followed_by(session, citizen_id, [complaint_id])
    return FollowState(
        complaint_id=complaint_id,
        following=complaint_id in mine,
        followers=counts.get(complaint_id, 0),
    )


def _filer_keys(c: Complaint) -> set[str]:
    """Blind keys of who filed: the owner index (from the plain citizen on an
    ordinary case, stored on a protected one) and the phone index (likewise
    from the plain contact phone, which is how an agent's or a visitor's
    offline filing meets the same resident's online one)."""
    keys = {f"o:{c.owner_index}", f"p:{c.phone_index}"}
    if c.citizen_id is not None:
        keys.add(f"o:{identity.owner_index(c.citizen_id)}")
    if c.contact_phone and identity.normalize_phone(c.contact_phone):
        keys.add(f"p:{identity.phone_index(c.contact_phone)}")
    return {k for k in keys if not k.endswith(":None")}


def _same_filer(user: StaffUser, c: Complaint) -> ColumnElement[bool]:
    """Cases by the same complainant, matched on what each row holds: the
    plain citizen or phone on ordinary cases, the blind indexes on protected
    ones. Only for a role that may see who filed this case, or the match
    itself would tell."""
    if not scope.sees_identity(user, c):
        return false()
    conds: list[ColumnElement[bool]] = []
    if c.citizen_id is not None:
        conds.append(Complaint.citizen_id == c.citizen_id)
    if c.contact_phone:
        conds.append(Complaint.contact_phone == c.contact_phone)
    for key in _filer_keys(c):
        column = Complaint.owner_index if key[0] == "o" else Complaint.phone_index
        conds.append(column == key[2:])
    return or_(*conds) if conds else false()


def _is_same_filer(a: Complaint, b: Complaint) -> bool:
    if a.citizen_id is not None and a.citizen_id == b.citizen_id:
        return True
    return bool(_filer_keys(a) & _filer_keys(b))


async def duplicates(
    session: AsyncSession, user: StaffUser, complaint_id: str, *, settings: Settings
) -> DuplicateList:
    c = (await queue.load_visible(session, user, complaint_id))[0]
    window = timedelta(days=settings.duplicate_window_days)
    bounds = (
        box(c.location_lat, c.location_lng, settings.duplicate_radius_m)
        if c.location_lat is not None and c.location_lng is not None
        else None
    )
    same_filer = _same_filer(user, c)
    rows = await repository.candidates(
        session,
        await scope.visible(session, user),
        Complaint.id != c.id,
        Complaint.received_at.between(c.received_at - window, c.received_at + window),
        or_(
            same_filer,
            Complaint.item_code.startswith(c.item_code[:2])
            & repository.near(c.region_code, bounds),
        ),
    )
    merged = await repository.merges_of(session, [r[0].id for r in rows])
    sims = await asyncio.to_thread(lambda: [similarity(c.content, r[0].content) for r in rows])
    out: list[DuplicateCandidate] = []
    for (other, item_name, region_name), s in zip(rows, sims, strict=True):
        filer = _is_same_filer(c, other) and scope.sees_identity(user, other)
        if (
            not filer
            and other.region_code != c.region_code
            and not _within(other, c.location_lat, c.location_lng, settings)
        ):
            continue
        reasons = [f"内容相近 {s:.0%}"]
        if other.item_code == c.item_code:
            reasons.append("同一事项")
        if other.region_code == c.region_code:
            reasons.append("同村（社区）")
        elif other.location_lat is not None:
            reasons.append("位置相近")
        if filer:
            reasons.append("同一反映人")
        likely = s >= settings.duplicate_threshold or (
            filer and s >= settings.duplicate_threshold / 2
        )
        if not likely and not filer:
            continue
        score = s + 0.2 * filer + 0.05 * (other.item_code == c.item_code)
        out.append(
            DuplicateCandidate(
                id=other.id,
                tracking_no=other.tracking_no,
                item=ItemBrief(code=other.item_code, name=item_name),
                region_name=region_name,
                status=other.status,
                status_label=other.status.label,
                content=other.content,
                received_at=other.received_at,
                similarity=s,
                score=round(score, 4),
                likely=likely,
                reasons=reasons,
                merged_into=merged.get(other.id),
            )
        )
    out.sort(key=lambda d: (-d.score, d.id))
    parent = await session.get(ComplaintMerge, c.id)
    parent_case = await session.get(Complaint, parent.parent_id) if parent else None
    return DuplicateList(
        complaint_id=c.id,
        threshold=settings.duplicate_threshold,
        merged_into=CaseRef(id=parent_case.id, tracking_no=parent_case.tracking_no)
        if parent_case
        else None,
        merged_children=[
            CaseRef(id=i, tracking_no=t) for i, t in await repository.children(session, c.id)
        ],
        items=out[:STAFF_LIST],
    )


def _may_merge(user: StaffUser, child: Complaint) -> None:
    if user.role not in workflow_service.SUPERVISION:
        raise Forbidden("当前角色不能并件")
    if user.unit_id != child.unit_id:
        raise Forbidden("只有承办单位的干部可以并件")


async def _set_child(
    session: AsyncSession, child: Complaint, expected: int, values: dict[str, object], now: datetime
) -> None:
    result = await session.execute(
        update(Complaint)
        .where(Complaint.id == child.id, Complaint.version == expected)
        .values(version=Complaint.version + 1, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise workflow_service.StaleVersion("案件已被他人处理，请刷新后重试")
    await session.refresh(child)


async def merge(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str,
    body: MergeRequest,
    *,
    now: datetime,
) -> MergeResult:
    child = (await queue.load_visible(session, user, complaint_id))[0]
    parent = (await queue.load_visible(session, user, body.parent_id))[0]
    _may_merge(user, child)
    if child.id == parent.id:
        raise BadRequest("不能将案件并入其自身")
    transition_to(child.status, ComplaintStatus.closed)
    if body.expected_version != child.version:
        raise workflow_service.StaleVersion("案件已被他人处理，请刷新后重试")
    if not parent.status.is_open or await session.get(ComplaintMerge, parent.id) is not None:
        raise Conflict("主件已办结或已被并件，不能并入")
    if await repository.children(session, child.id):
        raise Conflict("该案件已有并入的案件，请先撤销后再并件")
    if parent.accusation and not child.accusation:
        raise Conflict("不能将一般诉求并入举报件")
    old = child.status
    await _set_child(
        session,
        child,
        body.expected_version,
        {"status": ComplaintStatus.closed, "closed_at": now},
        now,
    )
    await workflow_service.claim(session, parent, now=now)
    session.add(
        ComplaintMerge(
            child_id=child.id,
            parent_id=parent.id,
            merged_by=user.id,
            merged_at=now,
            child_status=old.value,
        )
    )
    await events.append(
        session,
        child,
        kind="merged",
        public=True,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        from_status=old.value,
        to_status=ComplaintStatus.closed.value,
        note=body.note.strip(),
        data={
            "parent_id": parent.id,
            "parent_tracking_no": parent.tracking_no,
            "public_reply": f"与 {parent.tracking_no} 反映的是同一问题，已并入该件一并办理",
            "state": audit_state.changed(child, ["status", "closed_at"]),
        },
    )
    await events.append(
        session,
        parent,
        kind="merge_received",
        public=True,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        note=body.note.strip(),
        data={
            "child_id": child.id,
            "child_tracking_no": child.tracking_no,
            "public_reply": "另有群众反映的相同问题已并入本件一并办理",
        },
    )
    notify.to_citizen(
        session,
        child,
        kind="merged",
        title="诉求已并件办理",
        body=f"您反映的问题（{child.tracking_no}）与 {parent.tracking_no} 为同一问题，"
        "已并入一并办理，办理进展和评价邀请将同步通知您。",
        now=now,
    )
    await session.flush()
    return _result(child, parent, merged=True)


async def unmerge(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str,
    body: UnmergeRequest,
    *,
    now: datetime,
) -> MergeResult:
    child = (await queue.load_visible(session, user, complaint_id))[0]
    _may_merge(user, child)
    link = await session.get(ComplaintMerge, child.id)
    if link is None:
        raise Conflict("该案件未被并件")
    parent = (await queue.load_visible(session, user, link.parent_id))[0]
    if not parent.status.is_open:
        raise Conflict("主件已办结，不能撤销并件")
    transition_to(child.status, ComplaintStatus.reopened)
    if body.expected_version != child.version:
        raise workflow_service.StaleVersion("案件已被他人处理，请刷新后重试")
    await _set_child(
        session,
        child,
        body.expected_version,
        {"status": ComplaintStatus.reopened, "closed_at": None},
        now,
    )
    await workflow_service.claim(session, parent, now=now)
    await session.delete(link)
    await events.append(
        session,
        child,
        kind="unmerged",
        public=True,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        from_status=ComplaintStatus.closed.value,
        to_status=ComplaintStatus.reopened.value,
        note=body.note.strip(),
        data={
            "parent_id": parent.id,
            "public_reply": "经核实与原并入事项不是同一问题，已恢复单独办理",
            "state": audit_state.changed(child, ["status", "closed_at"]),
        },
    )
    await events.append(
        session,
        parent,
        kind="unmerge_received",
        public=False,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        note=body.note.strip(),
        data={"child_id": child.id, "child_tracking_no": child.tracking_no},
    )
    notify.to_citizen(
        session,
        child,
        kind="unmerged",
        title="诉求恢复单独办理",
        body=f"您反映的问题（{child.tracking_no}）已恢复单独办理。",
        now=now,
    )
    await session.flush()
    return _result(child, parent, merged=False)


def _result(child: Complaint, parent: Complaint, *, merged: bool) -> MergeResult:
    return MergeResult(
        child=CaseRef(id=child.id, tracking_no=child.tracking_no),
        parent=CaseRef(id=parent.id, tracking_no=parent.tracking_no),
        child_status=child.status,
        child_version=child.version,
        parent_version=parent.version,
        merged=merged,
    )
