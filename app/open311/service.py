"""The GeoReport v2 facade over our own rules: services are taxonomy items,
service requests are public cases, and a filing goes through the one filing
service every channel uses (``app.complaints.service.file``).

Privacy (GeoReport answers are public): accusations and anonymous filings are
never listed or readable, whoever asks; ``description`` is the public summary,
``status_notes`` the latest public reply (never an internal note), and no
field names or locates the resident more closely than the village.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import service as complaints_service
from app.complaints.summary import public_summary
from app.core.config import Settings
from app.core.errors import BadRequest, NotFound
from app.core.schemas import DATE_MAX, DATE_MIN
from app.models import ComplaintEvent
from app.models.enums import ItemClass
from app.open311 import repository
from app.open311.schemas import (
    Attribute,
    AttributeValue,
    Discovery,
    Endpoint,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenAnswer,
)
from app.taxonomy import service as taxonomy_service
from app.taxonomy.schemas import ItemRead

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = datetime(2026, 12, 3, tzinfo=UTC)  # when this facade's shape last changed
WINDOW = timedelta(days=90)
MAX_RESULTS = 1000
MAX_IDS = 100
NOTES_MAX = 500
SERVICE_CODE = re.compile(r"[0-9]{4}")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
PLUS_AS_SPACE = re.compile(r" ([0-9]{2}:?[0-9]{2})$")
# Citizens' own words on the timeline (supplements, ratings) are theirs, not replies.
NOT_REPLIES = frozenset({"supplemented", "rated"})

PRIORITY_VALUES = {
    "elderly": "老年人",
    "disabled": "残疾人",
    "group": "群体性诉求",
    "emergency": "紧急情况",
}
# Items that ask for something to be done carry the priority question (seed 000:
# elderly and disabled first; group complaints and emergencies at once).
PRIORITY_CLASSES = frozenset({ItemClass.request, ItemClass.complaint})
PRIORITY = Attribute(
    variable=True,
    code="priority",
    datatype="multivaluelist",
    required=False,
    datatype_description="可多选；不选即一般情形",
    order=1,
    description="是否属于需要优先办理的情形（老年人、残疾人优先；群体性、紧急事项立即介入）",
    values=[AttributeValue(key=k, name=v) for k, v in PRIORITY_VALUES.items()],
)


class ServiceNotFound(NotFound):
    code = "service_not_found"


class RequestNotFound(NotFound):
    code = "request_not_found"


def discovery(settings: Settings) -> Discovery:
    return Discovery(
        changeset=CHANGESET,
        contact=settings.open311_contact,
        key_service="api_key 由平台管理员签发（POST /api/v1/staff/integrators），请联系上述联系人",
        endpoints=[
            Endpoint(
                specification=SPECIFICATION,
                url=settings.public_base_url.rstrip("/") + "/open311/v2",
                changeset=CHANGESET,
                type="production",
                formats=["text/xml", "application/json"],
            )
        ],
    )


def attributes_of(item: ItemRead) -> list[Attribute]:
    return [PRIORITY] if item.klass in PRIORITY_CLASSES else []


def offered(item: ItemRead) -> bool:
    """Accusations are not filed through a public interface (their filer is protected)."""
    return item.klass is not ItemClass.accusation


async def services(session: AsyncSession) -> list[Service]:
    snap = await taxonomy_service.snapshot(session)
    return [
        Service(
            service_code=item.code,
            service_name=item.name,
            description=item.description,
            metadata=bool(attributes_of(item)),
            type="realtime",
            keywords=",".join(item.keywords),
            group=category.name,
        )
        for category in snap.document.categories
        for item in category.items
        if offered(item)
    ]


async def offered_item(session: AsyncSession, code: str) -> ItemRead | None:
    snap = await taxonomy_service.snapshot(session)
    item = snap.items.get(code)
    return item if item is not None and offered(item) else None


async def definition(session: AsyncSession, code: str) -> ServiceDefinition:
    item = await offered_item(session, code)
    if item is None:
        raise ServiceNotFound(f"service_code {code[:8]} 不存在")
    return ServiceDefinition(service_code=item.code, attributes=attributes_of(item))


# --- reading requests -----------------------------------------------------------------


def _listed(value: str | None, *, what: str, pattern: re.Pattern[str], limit: int) -> list[str]:
    parts = [p.strip() for p in (value or "").split(",") if p.strip()]
    if len(parts) > limit:
        raise BadRequest(f"{what} 最多 {limit} 个")
    for p in parts:
        if not pattern.fullmatch(p):
            raise BadRequest(f"{what} 格式不正确")
    return list(dict.fromkeys(parts))


def _moment(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        # An unencoded "+08:00" arrives as " 08:00" (a query string's "+" is a space).
        moment = datetime.fromisoformat(PLUS_AS_SPACE.sub(r"+\1", value))
    except ValueError:
        raise BadRequest(f"{what} 应为 W3C 时间，例如 2026-11-20T09:30:00+08:00") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{what} 须带时区，例如 2026-11-20T09:30:00Z") from None
    if not DATE_MIN <= moment.date() <= DATE_MAX:
        raise BadRequest(f"{what} 超出范围")
    return moment.astimezone(UTC)


def request_filter(
    *,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
    now: datetime,
) -> repository.RequestFilter:
    """The query as the specification reads it (empty parameters are absent)."""
    ids = _listed(service_request_id, what="service_request_id", pattern=REQUEST_ID, limit=MAX_IDS)
    if ids:
        return repository.RequestFilter(ids=ids)
    codes = _listed(service_code, what="service_code", pattern=SERVICE_CODE, limit=MAX_IDS)
    start, end = _moment(start_date, "start_date"), _moment(end_date, "end_date")
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - WINDOW
    if end is None:
        end = start + WINDOW
    if start > end:
        raise BadRequest("start_date 不能晚于 end_date")
    if end - start > WINDOW:
        raise BadRequest("start_date 与 end_date 相隔不能超过 90 天")
    states = set(_listed(status, what="status", pattern=re.compile("open|closed"), limit=2))
    return repository.RequestFilter(
        service_codes=codes,
        start=start,
        end=end,
        open=not states or "open" in states,
        closed=not states or "closed" in states,
    )


def _latest_reply(events: Sequence[ComplaintEvent]) -> str | None:
    latest: str | None = None
    for e in events:
        if e.kind in NOT_REPLIES or (e.actor_kind == "citizen" and e.kind != "filed"):
            continue
        text = complaints_service.public_text(e)
        if text:
            latest = text
    return public_summary(latest, limit=NOTES_MAX) if latest else None


async def requests(
    session: AsyncSession, where: repository.RequestFilter, *, settings: Settings
) -> list[ServiceRequest]:
    rows = await repository.public_requests(session, where, limit=MAX_RESULTS)
    by_case: dict[str, list[ComplaintEvent]] = {}
    for e in await repository.public_events(session, [r[0].id for r in rows]):
        by_case.setdefault(e.complaint_id, []).append(e)
    tz = ZoneInfo(settings.timezone)
    out = []
    for c, item_name, unit_name, place in rows:
        out.append(
            ServiceRequest(
                service_request_id=c.id,
                status="closed" if c.status in repository.CLOSED else "open",
                status_notes=_latest_reply(by_case.get(c.id, [])),
                service_name=item_name,
                service_code=c.item_code,
                description=public_summary(c.content),
                agency_responsible=unit_name,
                requested_datetime=c.received_at.astimezone(tz),
                updated_datetime=c.updated_at.astimezone(tz),
                expected_datetime=c.due_at.astimezone(tz),
                address=place,
                address_id=c.region_code,
                # About 100 m: where the problem is, not which house.
                lat=round(c.location_lat, 3) if c.location_lat is not None else None,
                long=round(c.location_lng, 3) if c.location_lng is not None else None,
            )
        )
    return out


async def one_request(
    session: AsyncSession, service_request_id: str, *, settings: Settings
) -> list[ServiceRequest]:
    """A one-element list; a protected case reads exactly like one that does not exist."""
    found = []
    if REQUEST_ID.fullmatch(service_request_id):
        where = repository.RequestFilter(ids=[service_request_id])
        found = await requests(session, where, settings=settings)
    if not found:
        raise RequestNotFound("未找到该服务请求")
    return found


async def token(session: AsyncSession, value: str) -> list[TokenAnswer]:
    row = await repository.token(session, value) if re.fullmatch(r"[0-9a-f]{32}", value) else None
    if row is None:
        raise NotFound("未找到该 token")
    return [TokenAnswer(token=row.token, service_request_id=row.complaint_id)]
