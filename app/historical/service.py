"""历史件补录: cases handled before this system, entered with their real dates
and outcome so that "逢访必登、事事有迹" holds for the years before it too.

Each row becomes a case like any other: routed (as of its receipt date),
numbered on its receipt day, chained with events carrying its real times
(filed, accepted, resolved and closed, or rejected) and counted in the
rollups on its receipt day. It is marked ``historical``: no one watched its
deadline here, so on-time figures leave it out (``closed_untimed``), and no
notice goes to anyone. A last, internal event records who imported it when.

All or nothing: every row is checked first and every problem listed at once
(``InvalidRows``); only a clean batch is written, in the request's one
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import state as audit_state
from app.complaints import events
from app.complaints import filing as complaints_filing
from app.complaints.schemas import PHONE_RE
from app.core.config import Settings
from app.core.errors import AppError, Forbidden
from app.disclosures import rows as sheet_rows
from app.historical.schemas import HistoricalCase, HistoricalImported, ImportedCase
from app.models import Complaint, Item, Region, StaffUser, SupervisionUnit
from app.models.enums import ComplaintStatus, RegionLevel, StaffRole, UnitKind
from app.regions import service as regions_service
from app.regions.repository import PREFIX_LENGTH
from app.routing import calendar_service
from app.routing import service as routing_service
from app.routing.engine import RouteDecision

CITY_PREFIX = "5117"
NOT_IMPORTER = "历史件补录由纪委监委或系统管理员办理"


@dataclass
class _Plan:
    number: int
    row: HistoricalCase
    item: Item
    path: list[Region]
    decision: RouteDecision
    phone: str | None


async def importer_prefix(session: AsyncSession, user: StaffUser) -> str:
    """Whose history one may enter: an administrator the whole city, a
    commission's cadres and leaders their region; nobody else."""
    if user.role is StaffRole.admin:
        return CITY_PREFIX
    if user.role in (StaffRole.supervisor, StaffRole.leader) and user.unit_id is not None:
        unit = await session.get(SupervisionUnit, user.unit_id)
        if unit is not None and unit.kind is UnitKind.commission:
            return unit.region_code[: PREFIX_LENGTH[unit.level]]
    raise Forbidden(NOT_IMPORTER)


def _date_problems(row: HistoricalCase, now: datetime) -> list[tuple[str, str]]:
    times = {
        "received_at": row.received_at,
        "accepted_at": row.accepted_at,
        "closed_at": row.closed_at,
    }
    out = [
        (k, "时间须带时区，例如 2025-03-10T09:30:00+08:00")
        for k, v in times.items()
        if v and v.tzinfo is None
    ]
    if out:
        return out
    if row.closed_at > now:
        out.append(("closed_at", "办结时间不能晚于现在"))
    if row.received_at > row.closed_at:
        out.append(("closed_at", "办结（或不予受理）时间不能早于收到时间"))
    if row.accepted_at is not None:
        if row.outcome == "rejected":
            out.append(("accepted_at", "不予受理的事项没有受理时间"))
        elif not row.received_at <= row.accepted_at <= row.closed_at:
            out.append(("accepted_at", "受理时间须在收到时间与办结时间之间"))
    return out


async def _check(
    session: AsyncSession,
    number: int,
    row: HistoricalCase,
    prefix: str,
    *,
    now: datetime,
    settings: Settings,
) -> tuple[_Plan | None, list[sheet_rows.RowError]]:
    errors = [sheet_rows.RowError(number, f, m) for f, m in _date_problems(row, now)]
    phone = (row.contact_phone or "").replace(" ", "") or None
    if phone and not PHONE_RE.fullmatch(phone):
        errors.append(sheet_rows.RowError(number, "contact_phone", "联系电话格式不正确"))
    if not row.region_code.startswith(prefix):
        errors.append(sheet_rows.RowError(number, "region_code", "该村（社区）不在本机关辖区内"))
    item: Item | None = None
    path: list[Region] = []
    try:
        item = await routing_service.current_item(session, row.item_code, allow_retired=True)
    except AppError as exc:
        errors.append(sheet_rows.RowError(number, "item_code", exc.detail))
    try:
        path = await regions_service.get_chain(session, row.region_code)
    except AppError as exc:
        errors.append(sheet_rows.RowError(number, "region_code", exc.detail))
    if path and path[-1].level is not RegionLevel.village:
        errors.append(sheet_rows.RowError(number, "region_code", "请填写具体的村（社区）编码"))
    if errors or item is None:
        return None, errors
    try:
        decision = await routing_service.decide(
            session,
            item=item,
            region_code=row.region_code,
            received_at=row.received_at,
            settings=settings,
            accusation=item.klass.value == "accusation" or row.accused_level is not None,
            accused_level=row.accused_level,
        )
    except AppError as exc:
        return None, [sheet_rows.RowError(number, None, f"无法分流：{exc.detail}")]
    return _Plan(number, row, item, path, decision, phone), []


async def _step(
    session: AsyncSession,
    c: Complaint,
    user: StaffUser,
    *,
    kind: str,
    at: datetime,
    values: dict[str, Any],
    public_reply: str,
    data: dict[str, Any] | None = None,
) -> None:
    """One step of the case's real history, at its real time, as its event."""
    old = c.status
    for name, value in values.items():
        setattr(c, name, value)
    c.version += 1
    c.updated_at = at
    await events.append(
        session,
        c,
        kind=kind,
        public=True,
        actor_kind="staff",
        actor_id=user.id,
        at=at,
        from_status=old.value,
        to_status=c.status.value if c.status is not old else None,
        note="历史件补录",
        data={
            **(data or {}),
            "public_reply": public_reply,
            "historical": True,
            "state": audit_state.changed(c, values),
        },
    )


async def _write(
    session: AsyncSession, user: StaffUser, plan: _Plan, *, now: datetime, settings: Settings
) -> Complaint:
    row = plan.row
    accusation = plan.item.klass.value == "accusation" or row.accused_level is not None
    name = None if row.anonymous else row.contact_name
    c = await complaints_filing.open_case(
        session,
        complaints_filing.NewCase(
            item=plan.item,
            path=plan.path,
            decision=plan.decision,
            channel=row.channel,
            content=row.content.strip(),
            anonymous=row.anonymous,
            accusation=accusation,
            accused_level=row.accused_level,
            received_at=row.received_at,
            actor_kind="staff",
            actor_id=user.id,
            filed_by_staff_id=user.id,
            contact_name=name,
            contact_phone=None if row.anonymous else plan.phone,
            reporter_name=name,
            imported_at=now,
        ),
        settings=settings,
        now=row.received_at,  # numbered, filed and routed on its real day
    )
    if row.outcome == "rejected":
        await _step(
            session,
            c,
            user,
            kind="rejected",
            at=row.closed_at,
            values={"status": ComplaintStatus.rejected},
            public_reply=row.result,
        )
    else:
        accepted = row.accepted_at or row.received_at
        await _step(
            session,
            c,
            user,
            kind="accepted",
            at=accepted,
            values={"status": ComplaintStatus.accepted, "accepted_at": accepted},
            public_reply=f"{plan.decision.unit.name}已受理",
        )
        await _step(
            session,
            c,
            user,
            kind="resolved",
            at=row.closed_at,
            values={
                "status": ComplaintStatus.resolved,
                "resolved_at": row.closed_at,
                "result": row.result,
            },
            public_reply=row.result,
        )
        calendar = await calendar_service.load_calendar(session, settings)
        await _step(
            session,
            c,
            user,
            kind="closed",
            at=row.closed_at,
            values={"status": ComplaintStatus.closed, "closed_at": row.closed_at},
            public_reply="已办结销号（历史件补录）",
            data={
                "on_time": False,  # not watched here: the rollups leave it out
                "handling_days": calendar.workdays_between(row.received_at, row.closed_at),
                "due_at": c.due_at.isoformat(),
            },
        )
    await events.append(
        session,
        c,
        kind="imported",
        public=False,
        actor_kind="staff",
        actor_id=user.id,
        at=now,
        note="历史件补录",
        data={"imported_at": now.isoformat(), "row": plan.number},
    )
    return c


async def import_cases(
    session: AsyncSession,
    user: StaffUser,
    rows: Sequence[tuple[int, HistoricalCase]],
    *,
    now: datetime,
    settings: Settings,
    dry_run: bool = False,
) -> HistoricalImported:
    """``rows``: (row number to report, case). Checks all, then writes all
    (a dry run stops after the checks: what would be imported, nothing written)."""
    prefix = await importer_prefix(session, user)
    plans: list[_Plan] = []
    errors: list[sheet_rows.RowError] = []
    for number, row in rows:
        plan, problems = await _check(session, number, row, prefix, now=now, settings=settings)
        errors += problems
        if plan is not None:
            plans.append(plan)
    if errors:
        raise sheet_rows.InvalidRows(errors)
    if dry_run:
        return HistoricalImported(count=len(plans), items=[], dry_run=True)
    done = [await _write(session, user, plan, now=now, settings=settings) for plan in plans]
    await session.flush()
    return HistoricalImported(
        count=len(done),
        items=[
            ImportedCase(row=p.number, id=c.id, tracking_no=c.tracking_no)
            for p, c in zip(plans, done, strict=True)
        ],
    )
