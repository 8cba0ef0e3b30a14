"""``POST requests.{format}``: a form-encoded GeoReport filing becomes a case.

The integrator is the actor (``integrator:<key id>`` in the case's chain) and
the channel is ``open311``; everything else (routing, the chain, rollups,
notices, the tracking number) is the one filing service every door uses.

Fields are the specification's. Empty ones are absent. ``email``,
``device_id``, ``account_id`` and ``media_url`` are accepted and not kept:
we never fetch a URL a stranger names, and we keep no identity we do not
need. A filing with neither a name nor a phone is anonymous: it is
protected like any anonymous filing and never appears in public answers.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import submission
from app.complaints.schemas import ComplaintCreate, Location
from app.core.config import Settings
from app.core.errors import BadRequest, validation_errors
from app.core.schemas import CONTROL_CHARS, CONTROL_CHARS_SINGLE_LINE
from app.models import IntegratorKey, Open311Token
from app.models.enums import Channel
from app.open311 import location
from app.open311 import service as open311_service
from app.open311.schemas import RequestFiled
from app.workflow.machine import Priority, priority_score

FIELD_MAX = {
    "api_key": 128,
    "jurisdiction_id": 64,
    "service_code": 8,
    "lat": 32,
    "long": 32,
    "address_string": 200,
    "address_id": 32,
    "email": 254,
    "device_id": 128,
    "account_id": 128,
    "first_name": 32,
    "last_name": 32,
    "phone": 20,
    "description": 4000,
    "media_url": 2000,
}
MULTI_LINE = frozenset({"description"})
ATTRIBUTE = re.compile(r"attribute\[([A-Za-z0-9_]{1,32})\](\[\])?")
MAX_ATTRIBUTE_VALUES = 20


class Form:
    """The posted fields, checked once: known names, bounded, no control characters."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.fields: dict[str, str] = {}
        self.attributes: dict[str, list[str]] = {}
        for name, raw in pairs:
            value = raw.strip()
            if not value:
                continue  # empty parameters are absent
            found = ATTRIBUTE.fullmatch(name)
            if found:
                values = self.attributes.setdefault(found.group(1), [])
                values += [v.strip() for v in value.split(",") if v.strip()]
                if len(values) > MAX_ATTRIBUTE_VALUES or len(value) > 200:
                    raise BadRequest(f"{name} 取值过多")
                self._check(name, value)
            elif name in FIELD_MAX:
                if len(value) > FIELD_MAX[name]:
                    raise BadRequest(f"{name} 过长（上限 {FIELD_MAX[name]} 字符）")
                self._check(name, value)
                self.fields[name] = value

    @staticmethod
    def _check(name: str, value: str) -> None:
        """Only the description is multi-line text; nobody types a tab into a name."""
        rule = CONTROL_CHARS if name in MULTI_LINE else CONTROL_CHARS_SINGLE_LINE
        if rule.search(value):
            raise BadRequest(f"{name} 含有无法识别的控制字符")

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def _coordinate(value: str | None, name: str, bound: float) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"{name} 应为十进制度数") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise BadRequest(f"{name} 超出范围")
    return number


async def _village(
    session: AsyncSession, form: Form, point: location.Point | None, *, now: datetime
) -> str:
    address_id, address = form.get("address_id"), form.get("address_string")
    if address_id:
        return await location.by_address_id(session, address_id)
    if address:
        return await location.by_address(session, address)
    if point is not None:
        return await location.by_point(session, point, now=now)
    raise BadRequest("须提供位置：lat 与 long，或 address_string，或 address_id")


def _priority(form: Form, attributes: Mapping[str, list[str]]) -> set[Priority]:
    flags: set[Priority] = set()
    for code, values in form.attributes.items():
        if code not in attributes:
            raise BadRequest(f"该服务没有属性 {code}")
        for v in values:
            if v not in attributes[code]:
                raise BadRequest(f"属性 {code} 的取值 {v[:20]} 不在可选范围内")
        if code == "priority":
            flags |= {Priority(v) for v in values}
    return flags


def _body(form: Form, village: str, point: location.Point | None) -> ComplaintCreate:
    name = ((form.get("last_name") or "") + (form.get("first_name") or "")) or None
    phone = form.get("phone")
    description = form.get("description")
    if description is None:
        raise BadRequest("description 必填：请描述反映的问题")
    address = form.get("address_string")
    try:
        return ComplaintCreate(
            item_code=form.get("service_code"),
            region_code=village,
            content=description,
            anonymous=not (name or phone),
            contact_name=name,
            contact_phone=phone,
            location=(
                Location(lat=point.lat, lng=point.lng, address=address)
                if point is not None
                else None
            ),
        )
    except ValidationError as exc:
        first = validation_errors(exc.errors())[0]
        raise BadRequest(str(first["reason"])) from None


async def file(
    session: AsyncSession,
    *,
    key: IntegratorKey,
    pairs: Sequence[tuple[str, str]],
    settings: Settings,
    now: datetime,
) -> list[RequestFiled]:
    form = Form(pairs)
    code = form.get("service_code")
    if code is None:
        raise BadRequest("service_code 必填")
    item = await open311_service.offered_item(session, code)
    if item is None:
        raise BadRequest(f"service_code {code} 不存在或不受理")
    attributes = {a.code: [v.key for v in a.values] for a in open311_service.attributes_of(item)}
    flags = _priority(form, attributes)
    lat = _coordinate(form.get("lat"), "lat", 90)
    lng = _coordinate(form.get("long"), "long", 180)
    if (lat is None) != (lng is None):
        raise BadRequest("lat 与 long 须同时提供")
    point = location.Point(lat, lng) if lat is not None and lng is not None else None
    village = await _village(session, form, point, now=now)
    body = _body(form, village, point)
    filed = await submission.file(
        session,
        body=body,
        settings=settings,
        now=now,
        filer=submission.Filer(
            channel=Channel.open311,
            actor_kind="integrator",
            actor_id=key.id,
            priority_flags=tuple(sorted(f.value for f in flags)),
            priority=priority_score(flags),
        ),
    )
    handle = secrets.token_hex(16)
    session.add(
        Open311Token(token=handle, complaint_id=filed.id, integrator_key_id=key.id, created_at=now)
    )
    await session.flush()
    tz = ZoneInfo(settings.timezone)
    notice = (
        f"已登记，编号 {filed.tracking_no}，由{filed.unit.name}负责，"
        f"将于 {filed.accept_due_at.astimezone(tz):%Y-%m-%d} 前受理。"
    )
    if filed.query_code:
        notice += f"匿名反映不公开显示，凭编号和查询码 {filed.query_code} 查询进度（仅显示一次）。"
    return [RequestFiled(service_request_id=filed.id, token=handle, service_notice=notice)]
