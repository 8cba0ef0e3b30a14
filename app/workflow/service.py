"""Working a case: one entry point, ``act()``, for every workflow action.

Order of checks: scope (404), role (403), the transition table (409), then a
conditional UPDATE … WHERE version = :expected so that of two racing writers
exactly one wins and the other gets 409 with nothing changed.

Each action's event keeps the internal note (``note``, staff only) apart from
the public reply (``data["public_reply"]``, what the resident reads), so a
cadre's reasoning never reaches the tracker by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import state as audit_state
from app.complaints import events
from app.complaints import repository as complaints_repository
from app.complaints.service import thresholds
from app.core.config import Settings
from app.core.errors import AppError, BadRequest, Conflict, Forbidden
from app.media import service as media_service
from app.media.dependencies import Uploader
from app.models import Complaint, Department, Region, StaffUser, SupervisionUnit
from app.models.enums import ComplaintStatus, RegionLevel, StaffRole
from app.notifications import service as notify
from app.routing import calendar_service
from app.workflow import queue, reclassify
from app.workflow.machine import Action, check_action, transition_to
from app.workflow.schemas import ActionRequest, CaseFile

SUPERVISION = frozenset({StaffRole.supervisor, StaffRole.leader})
ALLOWED_ROLES: dict[Action, frozenset[StaffRole]] = {
    Action.accept: SUPERVISION,
    Action.reject: SUPERVISION,
    Action.assign: SUPERVISION,
    Action.transfer: SUPERVISION,
    Action.escalate: SUPERVISION,
    Action.reply: SUPERVISION | {StaffRole.handler},
    Action.resolve: SUPERVISION | {StaffRole.handler},
    Action.extend: SUPERVISION | {StaffRole.handler},
    Action.sign: SUPERVISION | {StaffRole.handler},
    Action.reopen: SUPERVISION,
    Action.reclassify: SUPERVISION,
}
SLOT_ROLES = {
    "complainant": SUPERVISION,  # recording the resident's confirmation (phone / on site)
    "handler": frozenset({StaffRole.handler, StaffRole.supervisor}),
    "supervising_leader": frozenset({StaffRole.leader}),
    "principal_leader": frozenset({StaffRole.leader}),
}
EVENT_KIND = {
    Action.accept: "accepted",
    Action.reject: "rejected",
    Action.assign: "assigned",
    Action.transfer: "transferred",
    Action.escalate: "escalated",
    Action.reply: "replied",
    Action.resolve: "resolved",
    Action.sign: "signed",
    Action.reopen: "reopened",
    Action.extend: "extended",
    Action.reclassify: "reclassified",
}
# The internal note (staff only) these actions cannot go without.
NOTE_REQUIRED = {
    Action.escalate: "上报须写明原因",
    Action.reopen: "重新办理须写明原因",
    Action.extend: "延期须写明理由",
}
# The public reply (what the resident reads) these actions cannot go without.
# Clients written before ``public_reply`` existed sent that text as ``note``;
# for these three actions alone a lone ``note`` is still read as the public
# reply, which is what it always meant there.
REPLY_REQUIRED = {
    Action.reject: "不予受理须写明理由（将告知群众）",
    Action.reply: "答复内容不能为空",
    Action.resolve: "办结须写明办理结果",
}


class StaleVersion(Conflict):
    code = "stale_version"


@dataclass
class Effect:
    """What one action changes, collected before the single conditional UPDATE.

    ``note`` is the internal note (staff only); ``public_reply`` is what the
    resident reads on the timeline, kept in the event's data so the hash
    chain covers it. An internal event (``public=False``) reaches the
    timeline only if the staff member wrote a public reply for it.
    """

    values: dict[str, Any] = field(default_factory=dict)
    event_kind: str = ""
    public: bool = True
    note: str = ""
    public_reply: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    extra_events: list[dict[str, Any]] = field(default_factory=list)
    # kind, title, body, and the template slots (app/notifications/templates.py)
    citizen_notice: tuple[str, str, str, dict[str, str]] | None = None
    staff_notice: tuple[list[int], str, str] | None = None


def _authorise(user: StaffUser, c: Complaint, action: Action) -> None:
    if user.role not in ALLOWED_ROLES[action]:
        raise Forbidden("当前角色不能执行该操作")
    if user.role in SUPERVISION and user.unit_id != c.unit_id:
        raise Forbidden("只有承办单位的干部可以办理；上级单位可督办")
    if (
        user.role is StaffRole.handler
        and c.status is not ComplaintStatus.in_progress
        and action is not Action.sign
    ):
        raise Forbidden("案件未转交本部门办理")


def permitted_actions(user: StaffUser, c: Complaint) -> list[Action]:
    """The actions that pass the role, unit and transition-table checks of
    ``act`` right now (the console offers exactly these forms; ``act`` still
    checks everything again)."""
    allowed = []
    for action in Action:
        try:
            _authorise(user, c, action)
            check_action(c.status, action)
        except (Forbidden, Conflict):
            continue
        allowed.append(action)
    return allowed


async def act(
    session: AsyncSession,
    user: StaffUser,
    complaint_id: str,
    action: Action,
    body: ActionRequest,
    *,
    now: datetime,
    settings: Settings,
) -> CaseFile:
    row = await queue.load_visible(session, user, complaint_id)
    c, unit = row[0], row[3]
    _authorise(user, c, action)
    new_status = check_action(c.status, action)
    if body.expected_version != c.version:
        raise StaleVersion("案件已被他人处理，请刷新后重试")
    note, reply = body.note.strip(), (body.public_reply or "").strip()
    if action in REPLY_REQUIRED and not reply:
        reply, note = note, ""  # an older client: its note was the public text
        if not reply:
            raise BadRequest(REPLY_REQUIRED[action])
    if action in NOTE_REQUIRED and not note:
        raise BadRequest(NOTE_REQUIRED[action])
    # Evidence is checked before anything is written: a bad id costs nothing.
    evidence = await media_service.claimable(session, body.media_ids, Uploader("staff", user.id))
    if evidence:
        existing = await complaints_repository.attached_media(session, c.id)
        media_service.check_case_limits([*existing, *evidence])
    effect = await _effect(
        session, user, c, unit, action, body, note, reply, now=now, settings=settings
    )
    if action is Action.sign and effect.values.get("status") is ComplaintStatus.closed:
        new_status = transition_to(c.status, ComplaintStatus.closed)
    old_status = c.status
    values = {
        "status": new_status,
        "version": Complaint.version + 1,
        "updated_at": now,
        **effect.values,
    }
    result = await session.execute(
        update(Complaint)
        .where(Complaint.id == c.id, Complaint.version == body.expected_version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleVersion("案件已被他人处理，请刷新后重试")
    await session.refresh(c)
    await events.append(
        session,
        c,
        kind=effect.event_kind or EVENT_KIND[action],
        public=effect.public or bool(effect.public_reply),
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        from_status=old_status.value,
        to_status=(
            new_status.value if new_status is not old_status and action is not Action.sign else None
        ),
        note=effect.note or note,
        data={
            **effect.data,
            "public_reply": effect.public_reply,
            **({"media_ids": body.media_ids} if body.media_ids else {}),
            # What the UPDATE wrote, read back: `ydt audit verify` replays it.
            "state": audit_state.changed(c, values),
        },
    )
    for extra in effect.extra_events:
        await events.append(session, c, actor_kind="staff", actor_id=user.id, at=now, **extra)
    media_service.attach(evidence, f"complaint:{c.id}", now)
    if effect.citizen_notice:
        kind, title, text, slots = effect.citizen_notice
        notify.to_citizen(session, c, kind=kind, title=title, body=text, now=now, slots=slots)
        await notify.to_followers(
            session, c, kind=kind, title=title, body=text, now=now, slots=slots
        )
    if effect.staff_notice:
        ids, title, text = effect.staff_notice
        notify.to_staff(
            session, ids, complaint_id=c.id, kind=action.value, title=title, body=text, now=now
        )
    await session.flush()
    return await queue.case_file(session, user, c.id, now=now, settings=settings, scoped=False)


async def _effect(
    session: AsyncSession,
    user: StaffUser,
    c: Complaint,
    unit: SupervisionUnit,
    action: Action,
    body: ActionRequest,
    note: str,
    reply: str,
    *,
    now: datetime,
    settings: Settings,
) -> Effect:
    """Each action's changes. Staff notices may quote the internal note;
    whatever the resident reads (timeline, notices) is the public reply or a
    fixed sentence, never the note."""
    tz = ZoneInfo(settings.timezone)
    if action is Action.accept:
        return Effect(
            values={"accepted_at": now},
            public_reply=reply or f"{unit.name}已受理",
            citizen_notice=(
                "accepted",
                "诉求已受理",
                f"您反映的问题（{c.tracking_no}）已由{unit.name}受理，"
                f"将于 {c.due_at.astimezone(tz):%m月%d日} 前办结。",
                {"unit": unit.name},
            ),
        )
    if action is Action.reject:
        return Effect(
            public_reply=reply,
            citizen_notice=(
                "rejected",
                "诉求不予受理",
                f"您反映的问题（{c.tracking_no}）不予受理：{reply}",
                {"summary": reply},
            ),
        )
    if action is Action.assign:
        if body.cadre_id is None:
            raise BadRequest("请选择承办干部")
        cadre = await session.get(StaffUser, body.cadre_id)
        if (
            cadre is None
            or cadre.unit_id != c.unit_id
            or cadre.role is not StaffRole.supervisor
            or not cadre.active
        ):
            raise BadRequest("所选人员不是本单位在岗纪检干部")
        return Effect(
            values={"cadre_id": cadre.id},
            public=False,
            public_reply=reply,
            data={"cadre_id": cadre.id},
            staff_notice=([cadre.id], "新分派案件", f"{c.tracking_no} 已分派给您办理"),
        )
    if action is Action.transfer:
        dept_code = body.department_code or c.department_code
        region_code = body.department_region_code or c.department_region_code
        dept = await session.get(Department, dept_code)
        region = await session.get(Region, region_code)
        if dept is None:
            raise BadRequest(f"职能部门 {dept_code} 不存在")
        if region is None or region.level not in (RegionLevel.county, RegionLevel.city):
            raise BadRequest("职能部门须位于县（区）或市级")
        handlers = await notify.handlers_of(session, dept_code, region_code)
        return Effect(
            values={"handler_department_code": dept_code, "handler_region_code": region_code},
            event_kind="transferred",
            public_reply=reply or f"已转{region.name}{dept.name}办理",
            data={"department_code": dept_code, "region_code": region_code},
            staff_notice=(
                handlers,
                "新转办案件",
                f"{c.tracking_no} 已转贵部门办理，期限 {c.due_at.astimezone(tz):%m月%d日}",
            ),
        )
    if action is Action.escalate:
        if unit.parent_id is None:
            raise Conflict("已是最高一级监督单位，无法继续上报")
        parent = await session.get(SupervisionUnit, unit.parent_id)
        assert parent is not None
        receivers = await notify.staff_of_unit(session, parent.id, SUPERVISION)
        return Effect(
            values={"unit_id": parent.id, "cadre_id": None},
            note=f"已上报{parent.name}：{note}",
            public_reply=reply or f"已上报{parent.name}办理",
            data={"from_unit_id": unit.id, "to_unit_id": parent.id},
            staff_notice=(receivers, "下级上报案件", f"{unit.name}上报 {c.tracking_no}：{note}"),
        )
    if action is Action.reply:
        return Effect(
            event_kind="replied",
            public_reply=reply,
            citizen_notice=(
                "replied",
                "办理进展",
                f"您反映的问题（{c.tracking_no}）有新进展：{reply}",
                {"summary": reply},
            ),
        )
    if action is Action.resolve:
        return Effect(
            values={"resolved_at": now, "result": reply},
            event_kind="resolved",
            public_reply=reply,
            citizen_notice=(
                "resolved",
                "诉求已办结",
                f"您反映的问题（{c.tracking_no}）已办结：{reply}。请对办理结果进行评价。",
                {"summary": reply},
            ),
        )
    if action is Action.reopen:
        return Effect(
            values={
                "reopen_count": c.reopen_count + 1,
                "resolved_at": None,
                "closed_at": None,
                "result": None,
            },
            event_kind="reopened",
            public_reply=reply,
            citizen_notice=(
                "reopened",
                "诉求重新办理",
                f"您反映的问题（{c.tracking_no}）已重新办理：{reply}",
                {"summary": reply or "已重新办理"},
            ),
        )
    if action is Action.reclassify:
        found = await reclassify.effect(session, c, body.item_code, now=now, settings=settings)
        return Effect(
            values=found.values,
            public=False,
            public_reply=reply,
            data=found.data,
            staff_notice=found.staff_notice,
        )
    if action is Action.extend:
        return await _extend(session, user, c, body, note, reply, now=now, settings=settings)
    effect = await _sign(session, user, c, body, note, now=now, settings=settings)
    effect.public_reply = reply
    return effect


async def _extend(
    session: AsyncSession,
    user: StaffUser,
    c: Complaint,
    body: ActionRequest,
    note: str,
    reply: str,
    *,
    now: datetime,
    settings: Settings,
) -> Effect:
    if user.role is StaffRole.handler:
        if body.days is None:
            raise BadRequest("请填写申请延长的工作日数")
        return Effect(
            event_kind="extension_requested",
            public=False,
            public_reply=reply,
            data={"days": body.days},
        )
    days = body.days
    if days is None:
        pending = [
            e
            for e in await queue.all_events(session, c.id)
            if e.kind in ("extension_requested", "extended")
        ]
        if pending and pending[-1].kind == "extension_requested":
            days = int(pending[-1].data["days"])
    if days is None:
        raise BadRequest("请填写延长的工作日数")
    calendar = await calendar_service.load_calendar(session, settings)
    new_due = calendar.end_of_day(calendar.add_workdays(calendar.local_date(c.due_at), days))
    yellow_at, orange_at = thresholds(settings).moments(c.received_at, new_due)
    return Effect(
        values={
            "due_at": new_due,
            "yellow_at": yellow_at,
            "orange_at": orange_at,
            "time_limit_days": c.time_limit_days + days,
        },
        event_kind="extended",
        # The reason stays internal; the resident learns the new deadline.
        public_reply=reply or f"办理期限延长 {days} 个工作日，至 {calendar.local_date(new_due)}",
        data={"days": days, "old_due_at": c.due_at.isoformat(), "new_due_at": new_due.isoformat()},
    )


LEADER_SLOTS = ("supervising_leader", "principal_leader")


def sign_refusal(
    user: StaffUser,
    slot: str | None,
    this_round: list[tuple[str, int | None]],
    settings: Settings,
) -> AppError | None:
    """Why ``user`` may not sign ``slot`` given this round's (slot, signer)
    pairs, or None when they may: the one rule for the sign action and for
    the slots the console offers."""
    if slot not in settings.signoff_slots:
        return BadRequest(f"会签栏须为：{'、'.join(settings.signoff_slots)}")
    if user.role not in SLOT_ROLES.get(slot, SUPERVISION):
        return Forbidden("当前角色不能在该栏签字")
    if slot in [s for s, _ in this_round]:
        return Conflict("该栏已签字")
    leaders = {who for s, who in this_round if s in LEADER_SLOTS}
    if slot in LEADER_SLOTS and user.id in leaders:
        return Conflict("分管领导与主要领导须由不同人签字")
    return None


async def _sign(
    session: AsyncSession,
    user: StaffUser,
    c: Complaint,
    body: ActionRequest,
    note: str,
    *,
    now: datetime,
    settings: Settings,
) -> Effect:
    slot = body.slot
    this_round = queue.round_signatures(await queue.all_events(session, c.id))
    refusal = sign_refusal(user, slot, this_round, settings)
    if refusal is not None or slot is None:
        raise refusal or BadRequest("请选择会签栏")
    signed = [s for s, _ in this_round]
    if slot == "complainant" and not note:
        raise BadRequest("请记录群众确认的方式和意见（如电话回访）")
    closing = set(settings.signoff_slots) <= {*signed, slot}
    effect = Effect(event_kind="signed", public=False, data={"slot": slot})
    if closing:
        effect.values = {"status": ComplaintStatus.closed, "closed_at": now}
        effect.extra_events.append(await closing_event(session, c, now=now, settings=settings))
        # 三个100% (结果100%反馈) and 两个当天: the resident hears of the closure today.
        effect.citizen_notice = closed_notice(c)
    return effect


def closed_notice(c: Complaint) -> tuple[str, str, str, dict[str, str]]:
    """The notice of a closure, whoever closed it (staff sign-off, the resident's rating)."""
    return (
        "closed",
        "诉求已销号",
        f"您反映的问题（{c.tracking_no}）已办结销号，欢迎在小程序中评价办理结果。",
        {"tip": "欢迎评价办理结果"},
    )


async def closing_event(
    session: AsyncSession, c: Complaint, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """The 'closed' event, carrying the facts statistics need (on time, working days)."""
    calendar = await calendar_service.load_calendar(session, settings)
    return {
        "kind": "closed",
        "public": True,
        "to_status": ComplaintStatus.closed.value,
        "note": "会签完毕，已销号",
        "data": {
            "on_time": now <= c.due_at,
            "handling_days": calendar.workdays_between(c.received_at, now),
            "due_at": c.due_at.isoformat(),
        },
    }


async def change_status(
    session: AsyncSession,
    c: Complaint,
    target: ComplaintStatus,
    *,
    now: datetime,
    values: dict[str, Any] | None = None,
) -> None:
    """Status changes made for a resident's verdict or a callback: the same gate
    and the same conditional version update as staff actions."""
    transition_to(c.status, target)
    await claim(session, c, now=now, values={"status": target, **(values or {})})


async def claim(
    session: AsyncSession,
    c: Complaint,
    *,
    now: datetime,
    values: dict[str, Any] | None = None,
    conflict: Conflict | None = None,
) -> None:
    """Bump the case's version if nobody else has since ``c`` was read.

    A write that is not a staff action (a rating, a callback's verdict) takes
    this first, before inserting anything: of racing writers the first holds
    the row until it commits and every other one finds the version moved and
    gets 409, so no loser reaches a unique constraint (a 500) or half-writes.
    """
    result = await session.execute(
        update(Complaint)
        .where(Complaint.id == c.id, Complaint.version == c.version)
        .values(version=Complaint.version + 1, updated_at=now, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise conflict or StaleVersion("案件状态刚刚发生变化，请刷新后重试")
    await session.refresh(c)
