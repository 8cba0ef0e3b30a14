"""The resident's verdict and the quarterly callbacks (回访).

A rating is also the complainant's sign-off (会签 slot "complainant"); an
unsatisfied one reopens the case (at most ``reopen_on_unsatisfied`` times)
and flags it. A callback that finds a fake closure reopens the case and
counts against the unit in the statistics.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import state as audit_state
from app.complaints import events, identity
from app.complaints.service import ComplaintNotFound
from app.core.config import Settings
from app.core.errors import BadRequest, Conflict, Forbidden, NotFound
from app.feedback import sampling
from app.feedback.schemas import CallbackRecord, DrawRead, DrawUnit, RatingCreate, RatingRead
from app.models import (
    Callback,
    CallbackDraw,
    Citizen,
    Complaint,
    ComplaintMerge,
    Rating,
    StaffUser,
    SupervisionUnit,
)
from app.models.enums import ComplaintStatus, StaffRole, UnitKind
from app.moderation import service as moderation
from app.notifications import service as notify
from app.regions.repository import PREFIX_LENGTH
from app.workflow import queue, scope
from app.workflow import service as workflow

SUPERVISION = (StaffRole.supervisor, StaffRole.leader)
CALLBACK_NOT_FOUND = "回访任务不存在"
ALREADY_RATED = "您已评价过本次办理结果"


# What WeChat's verdict names when it refuses a rating's comment.
WHAT_COMMENT = "评价内容"


def comment_of(body: RatingCreate) -> str:
    """The comment as kept and as WeChat judges it."""
    return (body.comment or "").strip()


async def rate(
    session: AsyncSession,
    citizen: Citizen,
    complaint_id: str,
    body: RatingCreate,
    *,
    now: datetime,
    settings: Settings,
    text: moderation.TextCheck | None = None,
) -> RatingRead:
    """``text``: WeChat's verdict on the comment (``comment_of``), got before
    this session began (app/moderation/dependencies.py ``judged_first``)."""
    c = await session.get(Complaint, complaint_id) if len(complaint_id) == 32 else None
    if c is None or not identity.owned_by(c, citizen.id):
        raise ComplaintNotFound("未找到该反映事项")
    if c.status not in (ComplaintStatus.resolved, ComplaintStatus.closed):
        raise Conflict("事项尚未办结，办结后再评价")
    merge = await session.get(ComplaintMerge, c.id)
    if merge is not None:
        # A merged duplicate is rated once the case it joined is resolved (the
        # rating request comes with that case's notice); it counts nowhere.
        parent = await session.get(Complaint, merge.parent_id)
        if parent is None or parent.status not in (
            ComplaintStatus.resolved,
            ComplaintStatus.closed,
        ):
            raise Conflict("该事项已并入其他事项一并办理，办结后再评价")
    round_ = c.reopen_count
    taken = await session.execute(
        select(Rating.id).where(Rating.complaint_id == c.id, Rating.round == round_)
    )
    if taken.first() is not None:
        raise Conflict(ALREADY_RATED)
    comment = comment_of(body)
    # Claim the case before writing anything: of twenty taps on "submit" the
    # first holds the row, the others find its version moved and get 409.
    await workflow.claim(session, c, now=now, conflict=Conflict(ALREADY_RATED))
    rating = Rating(
        complaint_id=c.id,
        round=round_,
        # a protected case's rater stays as sealed as its filer
        citizen_id=None if c.identity_protected else citizen.id,
        score=body.score,
        satisfaction=body.satisfaction,
        comment=comment,
        reopened=False,
        created_at=now,
    )
    session.add(rating)
    if text is not None:
        await session.flush()
        moderation.record_text(session, text, target=f"rating:{rating.id}", complaint=c, now=now)
    await events.append(
        session,
        c,
        kind="rated",
        public=True,
        actor_kind="citizen",
        actor_id=citizen.id,
        at=now,
        note=comment,
        data={"score": body.score, "satisfaction": body.satisfaction, "round": round_},
    )
    earlier_reopens = (
        await session.execute(
            select(func.count())
            .select_from(Rating)
            .where(Rating.complaint_id == c.id, Rating.reopened.is_(True))
        )
    ).scalar_one()
    if body.satisfaction == "unsatisfied" and earlier_reopens < settings.reopen_on_unsatisfied:
        await reopen(
            session,
            c,
            actor_kind="citizen",
            actor_id=citizen.id,
            flag="dissatisfied",
            note="群众对办理结果不满意，重新办理",
            notice_kind="reopened",
            notice_title="群众不满意，案件重办",
            notice_body=f"{c.tracking_no}：{comment or '群众评价不满意'}",
            now=now,
        )
        rating.reopened = True
    elif c.status is ComplaintStatus.resolved and "complainant" in settings.signoff_slots:
        await _complainant_signs(session, c, citizen, now=now, settings=settings)
    await session.flush()
    return RatingRead(
        complaint_id=c.id,
        round=round_,
        score=rating.score,
        satisfaction=body.satisfaction,
        comment=comment,
        reopened=rating.reopened,
        status=c.status.value,
        created_at=now,
    )


async def reopen(
    session: AsyncSession,
    c: Complaint,
    *,
    actor_kind: str,
    actor_id: int,
    flag: str,
    note: str,
    notice_kind: str,
    notice_title: str,
    notice_body: str,
    now: datetime,
) -> None:
    """Reopen from a verdict (rating or callback): status, flag, public event, unit notice."""
    values = {
        "reopen_count": c.reopen_count + 1,
        "resolved_at": None,
        "closed_at": None,
        "result": None,
        "priority_flags": sorted({*c.priority_flags, flag}),
    }
    await workflow.change_status(session, c, ComplaintStatus.reopened, now=now, values=values)
    await events.append(
        session,
        c,
        kind="reopened",
        public=True,
        actor_kind=actor_kind,
        actor_id=actor_id,
        at=now,
        to_status=ComplaintStatus.reopened.value,
        note=note,
        data={
            "public_reply": note,  # a fixed sentence, written for the resident
            # The row as the reopening left it, for `ydt audit verify`'s replay.
            "state": audit_state.changed(c, ["status", *values]),
        },
    )
    receivers = await notify.staff_of_unit(session, c.unit_id, SUPERVISION)
    notify.to_staff(
        session,
        receivers,
        complaint_id=c.id,
        kind=notice_kind,
        title=notice_title,
        body=notice_body,
        now=now,
    )


async def _complainant_signs(
    session: AsyncSession, c: Complaint, citizen: Citizen, *, now: datetime, settings: Settings
) -> None:
    signed = queue.signatures_since_resolution(await queue.all_events(session, c.id))
    if "complainant" in signed:
        return
    await events.append(
        session,
        c,
        kind="signed",
        public=False,
        actor_kind="citizen",
        actor_id=citizen.id,
        at=now,
        data={"slot": "complainant", "via": "rating"},
    )
    if set(settings.signoff_slots) <= {*signed, "complainant"}:
        closing = await workflow.closing_event(session, c, now=now, settings=settings)
        await workflow.change_status(
            session, c, ComplaintStatus.closed, now=now, values={"closed_at": now}
        )
        await events.append(session, c, actor_kind="system", actor_id=None, at=now, **closing)
        kind, title, text, slots = workflow.closed_notice(c)
        notify.to_citizen(session, c, kind=kind, title=title, body=text, now=now, slots=slots)


async def _commission_prefix(session: AsyncSession, user: StaffUser) -> str | None:
    """The region prefix a user draws callbacks for: a commission's cadres
    theirs, an administrator the whole city; None for everyone else."""
    if user.role is StaffRole.admin:
        return "5117"
    if user.role not in SUPERVISION or user.unit_id is None:
        return None
    unit = await session.get(SupervisionUnit, user.unit_id)
    if unit is None or unit.kind is not UnitKind.commission:
        return None
    return unit.region_code[: PREFIX_LENGTH[unit.level]]


async def _draw_scope(session: AsyncSession, user: StaffUser) -> str:
    if user.role is not StaffRole.admin and user.role not in SUPERVISION:
        raise Forbidden("只有纪检监察机关可以抽取回访样本")
    prefix = await _commission_prefix(session, user)
    if prefix is None:
        raise Forbidden("回访抽样由纪委监委组织")
    return prefix


async def _visible_draw(session: AsyncSession, user: StaffUser, draw_id: int) -> CallbackDraw:
    """A draw is the commission's working paper: which cases it checks is
    hidden from the units it checks (a unit that knew could coach the
    resident), so everyone but the drawing commission gets "not found"."""
    d = await session.get(CallbackDraw, draw_id)
    prefix = await _commission_prefix(session, user)
    if d is None or prefix is None:
        raise NotFound(CALLBACK_NOT_FOUND)
    if user.role is not StaffRole.admin and prefix.ljust(12, "0") != d.scope_region:
        raise NotFound(CALLBACK_NOT_FOUND)
    return d


async def may_see_draw(session: AsyncSession, user: StaffUser, draw_id: int) -> bool:
    """Whether ``user`` may know that a draw sampled a case: the dossier asks
    before showing a callback that is still pending (a done one is in the
    case's chain, which the unit reads anyway)."""
    try:
        await _visible_draw(session, user, draw_id)
    except NotFound:
        return False
    return True


async def list_draws(session: AsyncSession, user: StaffUser) -> list[CallbackDraw]:
    """The draws of the user's commission, newest first (the console's list);
    the same rule as drawing: only a commission (or an administrator) has any."""
    prefix = await _draw_scope(session, user)
    stmt = select(CallbackDraw).order_by(CallbackDraw.id.desc())
    if user.role is not StaffRole.admin:
        stmt = stmt.where(CallbackDraw.scope_region == prefix.ljust(12, "0"))
    return list((await session.execute(stmt)).scalars())


async def list_callbacks(
    session: AsyncSession, user: StaffUser, draw_id: int | None, *, limit: int, offset: int
) -> list[Callback]:
    """Callbacks for the commission that drew them: a sample names cases,
    reached residents and their verdicts. Without a draw, every draw of the
    caller's commission (its region), newest first; anyone else sees none."""
    if draw_id is not None:
        await _visible_draw(session, user, draw_id)
        where = [Callback.draw_id == draw_id]
    else:
        prefix = await _commission_prefix(session, user)
        if prefix is None:
            return []
        draws = select(CallbackDraw.id)
        if user.role is not StaffRole.admin:
            draws = draws.where(CallbackDraw.scope_region == prefix.ljust(12, "0"))
        where = [Callback.draw_id.in_(draws)]
    stmt = (
        select(Callback)
        .join(Complaint, Complaint.id == Callback.complaint_id)
        .where(*where, await scope.visible(session, user))
        .order_by(Callback.draw_id.desc(), Callback.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(stmt)).scalars())


async def draw_callbacks(
    session: AsyncSession, user: StaffUser, quarter: str, *, now: datetime, settings: Settings
) -> DrawRead:
    prefix = await _draw_scope(session, user)
    try:
        start, end = sampling.quarter_bounds(quarter, ZoneInfo(settings.timezone))
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if start > now:
        raise BadRequest("该季度尚未开始")
    already = select(Callback.complaint_id)
    rows = (
        await session.execute(
            select(Complaint.id, Complaint.unit_id).where(
                Complaint.status == ComplaintStatus.closed,
                Complaint.closed_at >= start,
                Complaint.closed_at < end,
                Complaint.region_code.startswith(prefix),
                Complaint.id.not_in(already),
            )
        )
    ).all()
    seed = secrets.token_hex(16)
    chosen = sampling.draw(
        [(r.id, r.unit_id) for r in rows], seed=seed, fraction=settings.callback_fraction
    )
    population = {u: 0 for u in chosen}
    for r in rows:
        population[r.unit_id] += 1
    picked = sum(len(v) for v in chosen.values())
    d = CallbackDraw(
        quarter=quarter.upper().replace("-", ""),
        scope_region=prefix.ljust(12, "0"),
        seed=seed,
        fraction=settings.callback_fraction,
        population=len(rows),
        drawn=picked,
        created_by=user.id,
        created_at=now,
    )
    session.add(d)
    await session.flush()
    callbacks = [
        Callback(
            draw_id=d.id,
            complaint_id=cid,
            unit_id=unit_id,
            status="pending",
            fake_closure=False,
            note="",
        )
        for unit_id, ids in chosen.items()
        for cid in ids
    ]
    session.add_all(callbacks)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two overlapping draws at once (the city's and a county's, or a
        # double click) picked the same case: a case is drawn once, ever.
        raise Conflict("另一次回访抽样正在进行，请稍后重试") from exc
    return DrawRead(
        draw_id=d.id,
        quarter=d.quarter,
        seed=seed,
        fraction=d.fraction,
        population=len(rows),
        drawn=picked,
        by_unit=[
            DrawUnit(unit_id=u, population=population[u], drawn=len(ids))
            for u, ids in chosen.items()
        ],
        callback_ids=[cb.id for cb in callbacks],
    )


async def record_callback(
    session: AsyncSession, user: StaffUser, callback_id: int, body: CallbackRecord, *, now: datetime
) -> Callback:
    """Recorded by the commission that drew the sample, never by the unit it
    checks: a unit grading its own callback would make the check worthless."""
    cb = await session.get(Callback, callback_id)
    if cb is None:
        raise NotFound(CALLBACK_NOT_FOUND)
    await _visible_draw(session, user, cb.draw_id)
    if user.role not in SUPERVISION:
        raise Forbidden("回访须由抽样的纪委监委干部记录")
    c = await session.get(Complaint, cb.complaint_id)
    assert c is not None  # a callback's case cannot be deleted (foreign key)
    if user.unit_id in (cb.unit_id, c.unit_id):
        raise Forbidden("被回访的单位不能记录本单位案件的回访")
    note = body.note.strip()
    # Conditional on "pending": recorded once, and of two cadres recording at
    # the same moment exactly one wins.
    done = await session.execute(
        update(Callback)
        .where(Callback.id == cb.id, Callback.status == "pending")
        .values(
            status="done",
            method=body.method,
            reached=body.reached,
            resolved=body.resolved,
            satisfaction=body.satisfaction,
            fake_closure=body.fake_closure,
            note=note,
            staff_id=user.id,
            done_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("该回访已记录")
    await session.refresh(cb)
    await events.append(
        session,
        c,
        kind="callback",
        public=False,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        note=note,
        data={
            "method": body.method,
            "reached": body.reached,
            "resolved": body.resolved,
            "satisfaction": body.satisfaction,
            "fake_closure": body.fake_closure,
        },
    )
    if body.fake_closure and c.status is ComplaintStatus.closed:
        await reopen(
            session,
            c,
            actor_kind="staff",
            actor_id=user.id,
            flag="fake_closure",
            note="回访发现问题未真正解决，重新办理",
            notice_kind="fake_closure",
            notice_title="回访发现虚假办结",
            notice_body=f"{c.tracking_no} 回访发现虚假办结，已重新办理：{note}",
            now=now,
        )
    await session.flush()
    return cb
