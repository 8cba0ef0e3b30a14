"""Loading the calendar table and saying when it runs out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import BadRequest
from app.models import CalendarDay
from app.routing.calendar import WorkCalendar, library_years


async def load_calendar(session: AsyncSession, settings: Settings) -> WorkCalendar:
    rows = (await session.execute(select(CalendarDay.day, CalendarDay.is_workday))).all()
    return WorkCalendar({r.day: r.is_workday for r in rows}, timezone=settings.timezone)


async def admin_years(session: AsyncSession) -> frozenset[int]:
    rows = (await session.execute(select(CalendarDay.day))).scalars().all()
    return frozenset(d.year for d in rows)


async def readiness_warnings(
    session: AsyncSession, *, now: datetime, settings: Settings
) -> list[str]:
    """From December (configurable) warn about next year's missing schedule."""
    local = now.astimezone(WorkCalendar(timezone=settings.timezone).tz)
    known = library_years() | await admin_years(session)
    warnings: list[str] = []
    if local.year not in known:
        warnings.append(
            f"calendar: no holiday schedule for {local.year}; counting weekends only. "
            "Import the State Council schedule with `ydt calendar import`."
        )
    if local.month >= settings.calendar_warn_from_month and (local.year + 1) not in known:
        warnings.append(
            f"calendar: no holiday schedule for {local.year + 1} yet; deadlines reaching into it "
            "count weekends only. Import it with `ydt calendar import` once published."
        )
    return warnings


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    day: date
    is_workday: bool
    note: str = ""


def parse_schedule(data: Any) -> list[CalendarEntry]:
    """Accept ``{"year": 2027, "holidays": [...], "workdays": [...]}`` documents.

    ``holidays`` lists days off (法定节假日与调休休息日) and ``workdays`` the
    make-up working days (调休上班); entries are ``"2027-10-01"`` or
    ``{"date": "...", "note": "国庆节"}``.
    """
    if not isinstance(data, dict) or "year" not in data:
        raise BadRequest("日历文件须为 JSON 对象，并包含 year、holidays、workdays")
    year = data["year"]
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise BadRequest(f"年份无效: {year!r}")
    entries: list[CalendarEntry] = []
    seen: set[date] = set()
    for key, is_workday in (("holidays", False), ("workdays", True)):
        raw = data.get(key, [])
        if not isinstance(raw, list):
            raise BadRequest(f"{key} 须为列表")
        for i, entry in enumerate(raw, start=1):
            if isinstance(entry, dict):
                text, note = entry.get("date"), str(entry.get("note", ""))
            else:
                text, note = entry, ""
            try:
                day = date.fromisoformat(str(text))
            except ValueError as exc:
                raise BadRequest(f"{key} 第 {i} 项日期无效: {text!r}") from exc
            if day.year != year:
                raise BadRequest(f"{key} 第 {i} 项 {day} 不属于 {year} 年")
            if day in seen:
                raise BadRequest(f"{day} 重复出现")
            if is_workday and day.weekday() < 5:
                raise BadRequest(f"{key} 第 {i} 项 {day} 是工作日，无需调休上班")
            seen.add(day)
            entries.append(CalendarEntry(day=day, is_workday=is_workday, note=note[:64]))
    if not entries:
        raise BadRequest("日历文件没有任何日期")
    return entries


async def import_schedule(
    session: AsyncSession, entries: Iterable[CalendarEntry], *, actor: str, now: datetime
) -> int:
    """Replace a year's table with the published schedule (idempotent)."""
    entries = list(entries)
    years = {e.day.year for e in entries}
    existing = {
        row.day: row
        for row in (
            await session.execute(
                select(CalendarDay).where(
                    or_(*(CalendarDay.day.between(date(y, 1, 1), date(y, 12, 31)) for y in years))
                )
            )
        ).scalars()
    }
    wanted = {e.day for e in entries}
    for day, stale in existing.items():
        if day not in wanted:
            await session.delete(stale)
    for e in entries:
        row = existing.get(e.day)
        if row is None:
            session.add(
                CalendarDay(
                    day=e.day,
                    is_workday=e.is_workday,
                    note=e.note,
                    source="state_council",
                    updated_by=actor,
                    updated_at=now,
                )
            )
        elif (row.is_workday, row.note) != (e.is_workday, e.note):
            row.is_workday, row.note, row.updated_by, row.updated_at = (
                e.is_workday,
                e.note,
                actor,
                now,
            )
    await session.flush()
    return len(entries)
