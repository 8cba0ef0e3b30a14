"""Village-affairs disclosures: drafted by a clerk, reviewed and published by
the village affairs supervision committee (a second person), corrected by new
versions that keep the old ones visible, and read by residents with personal
data masked. Every change is a hash-chained event of the series."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import state as audit_state
from app.core.errors import BadRequest, Conflict, NotFound
from app.disclosures import events, permissions, xlsx
from app.disclosures import rows as rowlib
from app.disclosures.schemas import Correct, DisclosureCreate, DisclosurePatch, Publish, Withdraw
from app.media import service as media_service
from app.media.dependencies import Uploader
from app.models import Disclosure, Region, StaffUser
from app.models.enums import (
    DisclosureCategory,
    DisclosureStatus,
    MediaKind,
    RegionLevel,
    StaffRole,
)

MAX_ATTACHMENTS = 20

# "Ask about this line" pre-selects the item a resident most likely means.
QUESTION_ITEM = {
    DisclosureCategory.finance: "0103",  # 村级虚列开支白条入账
    DisclosureCategory.subsidy: "0303",  # 村干部截留冒领惠农补贴
    DisclosureCategory.relief: "0402",  # 低保评议关系保人情保
    DisclosureCategory.project: "0803",  # 村级工程虚增工程量套取资金
    DisclosureCategory.assets: "0202",  # 集体资源发包租赁暗箱操作
    DisclosureCategory.village: "1002",  # 重大事项未履行四议两公开
    DisclosureCategory.party: "1001",  # 村务公开栏长期不更新
    DisclosureCategory.other: "1001",
}


class DisclosureNotFound(NotFound):
    code = "disclosure_not_found"


class DisclosureStale(Conflict):
    code = "stale_version"


class DisclosureState(Conflict):
    code = "invalid_transition"


def fen(value: Decimal | None) -> int | None:
    return None if value is None else int((value * 100).to_integral_exact())


def yuan(value: int | None) -> str | None:
    return None if value is None else f"{Decimal(value) / 100:.2f}"


# --- content checks --------------------------------------------------------


@dataclass
class Content:
    rows: list[dict[str, Any]]
    opening: int | None
    closing: int | None
    income: int | None
    expense: int | None


def check_content(
    category: DisclosureCategory,
    raw_rows: list[dict[str, Any]],
    opening: Decimal | None,
    closing: Decimal | None,
    *,
    first_row_number: int = 1,
) -> Content:
    """Validate rows for the category; finance must balance, row by row."""
    models = rowlib.validate_rows(category, raw_rows, first_row_number=first_row_number)
    stored = [m.model_dump(mode="json") for m in models]
    if category is not DisclosureCategory.finance:
        if opening is not None or closing is not None:
            raise BadRequest("只有财务收支公开填写期初、期末余额")
        return Content(stored, None, None, None, None)
    if opening is None or closing is None:
        raise BadRequest("财务收支公开须填写期初余额和期末余额")
    finance = [m for m in models if isinstance(m, rowlib.FinanceRow)]
    rowlib.check_balance(finance, opening, closing, first_row_number=first_row_number)
    income, expense = rowlib.totals(finance)
    return Content(stored, fen(opening), fen(closing), fen(income), fen(expense))


async def _village(session: AsyncSession, code: str) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise NotFound(f"区划 {code} 不存在")
    if region.level is not RegionLevel.village:
        raise BadRequest(f"村务公开须属于具体的村（社区），{region.name} 是{region.level.label}")
    return region


async def _attachments(
    session: AsyncSession, user: StaffUser, d: Disclosure, media_ids: list[str], now: datetime
) -> list[str]:
    """Own uploads (images or PDF) join the series; ids already in it are kept."""
    if len(media_ids) > MAX_ATTACHMENTS:
        raise BadRequest(f"附件最多 {MAX_ATTACHMENTS} 个")
    tag = f"disclosure-series:{d.series_id}"
    media = await media_service.claimable(
        session,
        media_ids,
        Uploader("staff", user.id),
        kinds=(MediaKind.image, MediaKind.document),
        already_in=tag,
    )
    media_service.attach([m for m in media if m.attached_to != tag], tag, now)
    return list(media_ids)


# --- lifecycle -------------------------------------------------------------


async def get_for_staff(session: AsyncSession, user: StaffUser, disclosure_id: int) -> Disclosure:
    stmt = select(Disclosure).where(
        Disclosure.id == disclosure_id, await permissions.staff_scope(session, user)
    )
    d = (await session.execute(stmt)).scalar_one_or_none()
    if d is None:
        raise DisclosureNotFound("公开事项不存在")
    return d


async def create(
    session: AsyncSession, user: StaffUser, body: DisclosureCreate, *, now: datetime
) -> Disclosure:
    await _village(session, body.region_code)
    await permissions.require_author(session, user, body.region_code)
    content = check_content(body.category, body.rows, body.opening_balance, body.closing_balance)
    d = Disclosure(
        region_code=body.region_code,
        category=body.category,
        period_kind=body.period_kind,
        period=body.period,
        title=body.title,
        body=body.body,
        status=DisclosureStatus.draft,
        author_id=user.id,
        last_editor_id=user.id,
        created_at=now,
        updated_at=now,
        attachment_ids=[],
        **_content_values(content),
    )
    session.add(d)
    await session.flush()
    d.series_id = d.id
    d.attachment_ids = await _attachments(session, user, d, body.media_ids, now)
    await session.flush()
    await events.append(
        session, d, "created", user, now, data={"rows": len(content.rows), **_audited(d)}
    )
    return d


def _audited(d: Disclosure) -> dict[str, Any]:
    """What the version says, per field (digests), in the event that sets or
    publishes it: `ydt audit verify` replays it against the row."""
    return {"content": audit_state.disclosure_content(d)}


def _content_values(c: Content) -> dict[str, Any]:
    return {
        "rows": c.rows,
        "opening_fen": c.opening,
        "closing_fen": c.closing,
        "income_fen": c.income,
        "expense_fen": c.expense,
    }


async def _save(
    session: AsyncSession, d: Disclosure, expected: int, values: dict[str, Any]
) -> None:
    """One conditional UPDATE: of two editors racing, one wins and the other gets 409."""
    if d.lock_version != expected:
        raise DisclosureStale("公开内容已被他人修改，请刷新后重试")
    result = await session.execute(
        update(Disclosure)
        .where(Disclosure.id == d.id, Disclosure.lock_version == expected)
        .values(lock_version=Disclosure.lock_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise DisclosureStale("公开内容已被他人修改，请刷新后重试")
    await session.refresh(d)


def _require_draft(d: Disclosure, doing: str) -> None:
    if d.status is not DisclosureStatus.draft:
        raise DisclosureState(f"只有草稿可以{doing}（当前：{STATUS_CN[d.status]}）")


STATUS_CN = {
    DisclosureStatus.draft: "草稿",
    DisclosureStatus.published: "已发布",
    DisclosureStatus.withdrawn: "已撤回",
    DisclosureStatus.superseded: "已被更正",
}


async def patch(
    session: AsyncSession,
    user: StaffUser,
    disclosure_id: int,
    body: DisclosurePatch,
    *,
    now: datetime,
) -> Disclosure:
    d = await get_for_staff(session, user, disclosure_id)
    await permissions.require_author(session, user, d.region_code)
    _require_draft(d, "修改")
    if d.lock_version != body.expected_version:
        raise DisclosureStale("公开内容已被他人修改，请刷新后重试")
    changed = body.model_dump(exclude_unset=True, exclude={"expected_version", "media_ids"})
    values: dict[str, Any] = {}
    for name in ("title", "body", "period_kind", "period"):
        if name in changed and changed[name] is not None:
            values[name] = changed[name]
    if "period" in values or "period_kind" in values:
        from app.disclosures.schemas import PERIOD_PATTERNS

        kind = values.get("period_kind", d.period_kind)
        if not PERIOD_PATTERNS[kind].fullmatch(values.get("period", d.period)):
            raise BadRequest("公开期间与期间类型不符（如 2026-10、2026-Q3、2026）")
    if {"rows", "opening_balance", "closing_balance"} & set(changed):
        content = check_content(
            d.category,
            body.rows if body.rows is not None else d.rows,
            body.opening_balance if "opening_balance" in changed else _dec(d.opening_fen),
            body.closing_balance if "closing_balance" in changed else _dec(d.closing_fen),
        )
        values.update(_content_values(content))
    if body.media_ids is not None:
        values["attachment_ids"] = await _attachments(session, user, d, body.media_ids, now)
    values.update(last_editor_id=user.id, updated_at=now)
    await _save(session, d, body.expected_version, values)
    await events.append(
        session, d, "edited", user, now, data={"fields": sorted(set(changed)), **_audited(d)}
    )
    return d


def _dec(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value) / 100


async def import_rows(
    session: AsyncSession,
    user: StaffUser,
    disclosure_id: int,
    data: bytes,
    *,
    expected_version: int,
    opening_balance: Decimal | None,
    closing_balance: Decimal | None,
    now: datetime,
) -> Disclosure:
    """Replace a draft's rows from an .xlsx sheet; any bad row rejects the whole
    sheet with every bad row named (Excel row numbers), and nothing is written."""
    d = await get_for_staff(session, user, disclosure_id)
    await permissions.require_author(session, user, d.region_code)
    _require_draft(d, "导入")
    if d.lock_version != expected_version:  # before parsing: a stale form is the first thing to say
        raise DisclosureStale("公开内容已被他人修改，请刷新后重试")
    raw = await xlsx.read_xlsx(data, d.category)
    content = check_content(
        d.category,
        raw,
        opening_balance if opening_balance is not None else _dec(d.opening_fen),
        closing_balance if closing_balance is not None else _dec(d.closing_fen),
        first_row_number=2,
    )
    values = {**_content_values(content), "last_editor_id": user.id, "updated_at": now}
    await _save(session, d, expected_version, values)
    await events.append(
        session, d, "rows_imported", user, now, data={"rows": len(content.rows), **_audited(d)}
    )
    return d


async def publish(
    session: AsyncSession, user: StaffUser, disclosure_id: int, body: Publish, *, now: datetime
) -> Disclosure:
    d = await get_for_staff(session, user, disclosure_id)
    permissions.require_reviewer(user, d)
    _require_draft(d, "发布")
    if d.category is DisclosureCategory.finance and d.opening_fen is None:
        raise BadRequest("财务收支公开须填写期初余额和期末余额")
    old: Disclosure | None = None
    if d.supersedes_id is not None:
        old = await session.get(Disclosure, d.supersedes_id)
        if old is None or old.status is not DisclosureStatus.published:
            raise DisclosureState("被更正的版本已不在发布状态，不能发布此更正")
    await _save(
        session,
        d,
        body.expected_version,
        {"status": DisclosureStatus.published, "reviewer_id": user.id, "published_at": now},
    )
    if old is not None:
        await _save(
            session,
            old,
            old.lock_version,
            {"status": DisclosureStatus.superseded, "superseded_by_id": d.id, "updated_at": now},
        )
        await events.append(
            session, old, "superseded", user, now, note=d.correction_reason or "", data={"by": d.id}
        )
    await events.append(session, d, "published", user, now, note=body.note, data=_audited(d))
    return d


async def withdraw(
    session: AsyncSession, user: StaffUser, disclosure_id: int, body: Withdraw, *, now: datetime
) -> Disclosure:
    d = await get_for_staff(session, user, disclosure_id)
    is_committee = user.role is StaffRole.committee and user.region_code == d.region_code
    if not is_committee:
        await permissions.require_author(session, user, d.region_code)
    if d.status is not DisclosureStatus.published:
        raise DisclosureState(f"只有已发布的公开可以撤回（当前：{STATUS_CN[d.status]}）")
    await _save(
        session,
        d,
        body.expected_version,
        {
            "status": DisclosureStatus.withdrawn,
            "withdrawn_at": now,
            "withdraw_reason": body.reason,
            "updated_at": now,
        },
    )
    await events.append(session, d, "withdrawn", user, now, note=body.reason)
    pending = await _pending_correction(session, d)
    if pending is not None:
        # Its draft correction would have nothing left to supersede: it goes too,
        # rather than sit unpublishable with no way to remove it.
        await _save(
            session,
            pending,
            pending.lock_version,
            {"status": DisclosureStatus.withdrawn, "withdrawn_at": now, "updated_at": now,
             "withdraw_reason": f"所更正的公开已撤回：{body.reason}"},
        )  # fmt: skip
        await events.append(session, pending, "withdrawn", user, now, note=body.reason)
    return d


async def _pending_correction(session: AsyncSession, d: Disclosure) -> Disclosure | None:
    stmt = select(Disclosure).where(
        Disclosure.supersedes_id == d.id, Disclosure.status == DisclosureStatus.draft
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def correct(
    session: AsyncSession, user: StaffUser, disclosure_id: int, body: Correct, *, now: datetime
) -> Disclosure:
    """A correction is a new draft version; publishing it (after review)
    supersedes the current one, which stays readable with the reason."""
    d = await get_for_staff(session, user, disclosure_id)
    await permissions.require_author(session, user, d.region_code)
    if d.status is not DisclosureStatus.published:
        raise DisclosureState(f"只有已发布的公开可以更正（当前：{STATUS_CN[d.status]}）")
    if body.expected_version is not None and d.lock_version != body.expected_version:
        raise DisclosureStale("公开内容已被他人修改，请刷新后重试")
    pending = await _pending_correction(session, d)
    if pending is not None:
        raise DisclosureState(f"已有待审核的更正草稿（编号 {pending.id}），请先处理")
    latest = (
        await session.execute(
            select(func.max(Disclosure.version)).where(Disclosure.series_id == d.series_id)
        )
    ).scalar_one()
    content = check_content(
        d.category,
        body.rows if body.rows is not None else d.rows,
        body.opening_balance if body.opening_balance is not None else _dec(d.opening_fen),
        body.closing_balance if body.closing_balance is not None else _dec(d.closing_fen),
    )
    new = Disclosure(
        series_id=d.series_id,
        version=int(latest) + 1,
        region_code=d.region_code,
        category=d.category,
        period_kind=d.period_kind,
        period=d.period,
        title=body.title or d.title,
        body=body.body if body.body is not None else d.body,
        status=DisclosureStatus.draft,
        author_id=user.id,
        last_editor_id=user.id,
        supersedes_id=d.id,
        correction_reason=body.reason,
        attachment_ids=list(d.attachment_ids),
        created_at=now,
        updated_at=now,
        **_content_values(content),
    )
    session.add(new)
    await session.flush()
    await events.append(
        session,
        new,
        "correction_drafted",
        user,
        now,
        note=body.reason,
        data={"of": d.id, **_audited(new)},
    )
    return new


# --- reading ---------------------------------------------------------------

PUBLIC = (DisclosureStatus.published, DisclosureStatus.superseded)


async def get_public(session: AsyncSession, disclosure_id: int, *, count_view: bool) -> Disclosure:
    """Published or superseded versions only: a draft or a withdrawal is 404."""
    d = await session.get(Disclosure, disclosure_id)
    if d is None or d.status not in PUBLIC:
        raise DisclosureNotFound("公开事项不存在或尚未发布")
    if count_view:
        await session.execute(
            update(Disclosure)
            .where(Disclosure.id == d.id)
            .values(view_count=Disclosure.view_count + 1)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(d)
    return d


async def history(session: AsyncSession, d: Disclosure, *, public: bool) -> list[Disclosure]:
    stmt = select(Disclosure).where(Disclosure.series_id == d.series_id)
    if public:
        stmt = stmt.where(Disclosure.status.in_(PUBLIC))
    return list((await session.execute(stmt.order_by(Disclosure.version))).scalars())


async def for_question(
    session: AsyncSession, disclosure_id: int, row: int | None, village: str | None
) -> tuple[Disclosure, str]:
    """The disclosure a resident asks about, and the item to pre-select."""
    d = await get_public(session, disclosure_id, count_view=False)
    if village is not None and village != d.region_code:
        raise BadRequest("所问的公开事项不属于所选的村（社区）")
    if row is not None and not 1 <= row <= len(d.rows):
        raise BadRequest(f"该公开共 {len(d.rows)} 行，没有第 {row} 行")
    return d, QUESTION_ITEM[d.category]


async def staff_list(
    session: AsyncSession,
    user: StaffUser,
    *,
    region_code: str | None,
    status: DisclosureStatus | None,
    limit: int,
    offset: int,
) -> list[Disclosure]:
    stmt = select(Disclosure).where(await permissions.staff_scope(session, user))
    if region_code:
        from app.regions.repository import prefix_of

        stmt = stmt.where(Disclosure.region_code.startswith(prefix_of(region_code)))
    if status is not None:
        stmt = stmt.where(Disclosure.status == status)
    stmt = stmt.order_by(Disclosure.updated_at.desc(), Disclosure.id.desc())
    return list((await session.execute(stmt.offset(offset).limit(limit))).scalars())
