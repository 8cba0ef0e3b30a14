"""Administrators change routing data; every change is a new row (history)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, Conflict, NotFound
from app.models import DesignatedCadre, RoutingOverride, StaffUser, SupervisionUnit
from app.models.enums import StaffRole
from app.regions import service as regions_service
from app.routing import service as routing_service


async def _unit(session: AsyncSession, unit_code: str) -> SupervisionUnit:
    unit = (
        await session.execute(select(SupervisionUnit).where(SupervisionUnit.code == unit_code))
    ).scalar_one_or_none()
    if unit is None:
        raise NotFound(f"监督单位 {unit_code} 不存在")
    if not unit.active:
        raise BadRequest(f"监督单位 {unit.name} 已停用")
    return unit


class _Revocable(Protocol):
    revoked_at: datetime | None
    revoked_by: str | None


def _revoke(row: _Revocable, label: str, *, actor: str, now: datetime) -> None:
    if row.revoked_at is not None:
        raise Conflict(f"{label} 已于 {row.revoked_at:%Y-%m-%d} 撤销")
    row.revoked_at, row.revoked_by = now, actor


async def _supersede(session: AsyncSession, stmt: Any, *, actor: str, now: datetime) -> None:
    """One active rule per key: the old ones are revoked and stay as history."""
    for old in (await session.execute(stmt)).scalars().all():
        old.revoked_at, old.revoked_by = now, actor


async def list_overrides(
    session: AsyncSession, *, item_code: str | None, include_revoked: bool
) -> Sequence[RoutingOverride]:
    stmt = select(RoutingOverride).order_by(RoutingOverride.id.desc())
    if item_code:
        stmt = stmt.where(RoutingOverride.item_code == item_code)
    if not include_revoked:
        stmt = stmt.where(RoutingOverride.revoked_at.is_(None))
    return (await session.execute(stmt.limit(500))).scalars().all()


async def create_override(
    session: AsyncSession,
    *,
    item_code: str,
    region_code: str,
    unit_code: str,
    reason: str,
    actor: str,
    now: datetime,
) -> RoutingOverride:
    await routing_service.current_item(session, item_code)
    await regions_service.get_chain(session, region_code)
    unit = await _unit(session, unit_code)
    await _supersede(
        session,
        select(RoutingOverride).where(
            RoutingOverride.item_code == item_code,
            RoutingOverride.region_code == region_code,
            RoutingOverride.revoked_at.is_(None),
        ),
        actor=actor,
        now=now,
    )
    rule = RoutingOverride(
        item_code=item_code,
        region_code=region_code,
        unit_id=unit.id,
        reason=reason,
        created_by=actor,
        created_at=now,
    )
    session.add(rule)
    await session.flush()
    return rule


async def revoke_override(
    session: AsyncSession, override_id: int, *, actor: str, now: datetime
) -> RoutingOverride:
    rule = await session.get(RoutingOverride, override_id)
    if rule is None:
        raise NotFound(f"分流调整规则 #{override_id} 不存在")
    _revoke(rule, f"分流调整规则 #{override_id}", actor=actor, now=now)
    await session.flush()
    return rule


async def designate(
    session: AsyncSession,
    *,
    unit_code: str,
    item_code: str,
    username: str,
    actor: str,
    now: datetime,
) -> DesignatedCadre:
    unit = await _unit(session, unit_code)
    await routing_service.current_item(session, item_code)
    staff = (
        await session.execute(select(StaffUser).where(StaffUser.username == username))
    ).scalar_one_or_none()
    if staff is None:
        raise NotFound(f"工作人员 {username} 不存在")
    if staff.unit_id != unit.id or staff.role is not StaffRole.supervisor or not staff.active:
        raise BadRequest(
            f"{staff.display_name} 不是 {unit.name} 的在岗纪检干部，不能指定为事项责任人"
        )
    await _supersede(
        session,
        select(DesignatedCadre).where(
            DesignatedCadre.unit_id == unit.id,
            DesignatedCadre.item_code == item_code,
            DesignatedCadre.revoked_at.is_(None),
        ),
        actor=actor,
        now=now,
    )
    row = DesignatedCadre(
        unit_id=unit.id, item_code=item_code, staff_id=staff.id, created_by=actor, created_at=now
    )
    session.add(row)
    await session.flush()
    return row


async def list_designations(
    session: AsyncSession, *, unit_code: str | None
) -> Sequence[DesignatedCadre]:
    stmt = (
        select(DesignatedCadre)
        .where(DesignatedCadre.revoked_at.is_(None))
        .order_by(DesignatedCadre.id)
    )
    if unit_code:
        unit = await _unit(session, unit_code)
        stmt = stmt.where(DesignatedCadre.unit_id == unit.id)
    return (await session.execute(stmt.limit(1000))).scalars().all()


async def revoke_designation(
    session: AsyncSession, designation_id: int, *, actor: str, now: datetime
) -> DesignatedCadre:
    row = await session.get(DesignatedCadre, designation_id)
    if row is None:
        raise NotFound(f"事项责任人指定 #{designation_id} 不存在")
    _revoke(row, f"事项责任人指定 #{designation_id}", actor=actor, now=now)
    await session.flush()
    return row
