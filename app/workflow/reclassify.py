"""Reclassifying a case's item (更正事项分类): re-routed, recorded, learnable.

When the resident chose the wrong item, the receiving unit corrects it before
accepting the case. The case is routed again exactly as a new filing of that
item in that village, received at the same moment, would be (the pure
``routing.engine.route`` through ``routing_service.decide``): the unit, the
competent department, the designated cadre, the tier and the deadlines all
follow the new item, and the new trace replaces the old one.

The ``reclassified`` event is the record of the correction. Its data:

* ``from_item_code`` / ``to_item_code``: the resident's choice and the
  correct item (training pairs for ``ydt taxonomy retrain``: ``corrections``);
* ``from_unit_id`` / ``unit_id``: where the case was and where it is now
  (``app/stats/rollup.py`` moves the case's counts with it);
* ``cadre_id``, ``override_id``, ``trace``, ``warnings``: the new routing,
  as the ``routed`` event of a filing carries it;
* ``public_reply`` and ``state`` as on every staff action.

The resident's text is not copied into the event: it is the case's
``content`` (``corrections`` joins it), so the chain holds one copy.

Moving between an accusation (举报) and any other class is refused: the two
keep the complainant's identity differently (sealed or not) from the moment
of filing, and a correction must not unseal or half-seal it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints.service import thresholds
from app.core.config import Settings
from app.core.errors import BadRequest
from app.models import Complaint, ComplaintEvent, TaxonomyVersion
from app.models.enums import ItemClass, StaffRole
from app.notifications import service as notify
from app.routing import service as routing_service

EVENT = "reclassified"
SUPERVISION = (StaffRole.supervisor, StaffRole.leader)


@dataclass(frozen=True, slots=True)
class Reclassification:
    values: dict[str, Any]
    data: dict[str, Any]
    staff_notice: tuple[list[int], str, str] | None


async def effect(
    session: AsyncSession,
    c: Complaint,
    item_code: str | None,
    *,
    now: datetime,
    settings: Settings,
) -> Reclassification:
    if not item_code:
        raise BadRequest("请选择正确的事项")
    if item_code == c.item_code:
        raise BadRequest("所选事项与原事项相同，无需更正")
    item = await routing_service.current_item(session, item_code)
    accusation = item.klass is ItemClass.accusation or c.accused_level is not None
    if accusation != c.accusation:
        raise BadRequest(
            "举报（问题线索）与其他类别之间不能更正分类：两者对反映人身份的保护方式不同。"
            "请不予受理并告知群众按正确类别重新反映"
        )
    decision = await routing_service.decide(
        session,
        item=item,
        region_code=c.region_code,
        received_at=c.received_at,
        settings=settings,
        accusation=accusation,
        accused_level=c.accused_level,
    )
    yellow_at, orange_at = thresholds(settings).moments(c.received_at, decision.due_at)
    version = await session.get(TaxonomyVersion, item.version_id)
    if version is not None and version.first_used_at is None:
        version.first_used_at = now  # as at filing: a used taxonomy version is immutable
    notice = None
    if decision.unit.id != c.unit_id:
        receivers = await notify.staff_of_unit(session, decision.unit.id, SUPERVISION)
        notice = (
            receivers,
            "更正分类转入案件",
            f"{c.tracking_no} 更正为“{item.name}”后，按分流规则由{decision.unit.name}办理",
        )
    return Reclassification(
        values={
            "item_id": item.id,
            "item_code": item.code,
            "unit_id": decision.unit.id,
            "department_code": decision.department_code,
            "department_region_code": decision.department_region_code,
            "cadre_id": decision.cadre_id,
            "tier": decision.tier,
            "time_limit_days": decision.time_limit_days,
            "accept_due_at": decision.accept_due_at,
            "due_at": decision.due_at,
            "yellow_at": yellow_at,
            "orange_at": orange_at,
            "routing_trace": list(decision.trace),
        },
        data={
            "from_item_code": c.item_code,
            "to_item_code": item.code,
            "from_unit_id": c.unit_id,
            "unit_id": decision.unit.id,
            "cadre_id": decision.cadre_id,
            "override_id": decision.override_id,
            "trace": list(decision.trace),
            "warnings": list(decision.warnings),
        },
        staff_notice=notice,
    )


@dataclass(frozen=True, slots=True)
class Correction:
    """One training example: what the resident wrote, what they chose, what it was."""

    text: str
    from_item_code: str
    to_item_code: str
    at: datetime


async def corrections(session: AsyncSession, *, limit: int = 100_000) -> list[Correction]:
    """Every reclassification, oldest first (``ydt taxonomy retrain`` reads these).

    A case corrected twice yields two examples; the later one wins where a
    trainer keeps one label per text.
    """
    rows = await session.execute(
        select(Complaint.content, ComplaintEvent.data, ComplaintEvent.created_at)
        .join(Complaint, Complaint.id == ComplaintEvent.complaint_id)
        .where(ComplaintEvent.kind == EVENT)
        .order_by(ComplaintEvent.created_at, ComplaintEvent.id)
        .limit(limit)
    )
    return [
        Correction(
            text=content,
            from_item_code=str(data.get("from_item_code", "")),
            to_item_code=str(data.get("to_item_code", "")),
            at=at,
        )
        for content, data, at in rows
        if data.get("to_item_code")
    ]
