"""Disclosures as residents and staff see them: residents get masked rows and
only public versions in the history; staff see what they will publish."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.storage import MediaStore
from app.disclosures import rows as rowlib
from app.disclosures import service
from app.disclosures.schemas import (
    Attachment,
    DisclosureBrief,
    DisclosureRead,
    DisclosureRef,
    QuestionItem,
    StaffDisclosureRead,
    Totals,
    VersionBrief,
)
from app.media import service as media_service
from app.models import Disclosure, Media, Region, StaffUser
from app.taxonomy import service as taxonomy_service


async def region_names(session: AsyncSession, codes: Sequence[str]) -> dict[str, str]:
    stmt = select(Region.code, Region.full_name).where(Region.code.in_(set(codes)))
    return {code: name for code, name in (await session.execute(stmt)).all()}


def brief(d: Disclosure, region_name: str) -> DisclosureBrief:
    assert d.series_id is not None
    return DisclosureBrief(
        id=d.id,
        series_id=d.series_id,
        version=d.version,
        region_code=d.region_code,
        region_name=region_name,
        category=d.category,
        category_label=d.category.label,
        period_kind=d.period_kind,
        period=d.period,
        title=d.title,
        status=d.status,
        published_at=d.published_at,
        view_count=d.view_count,
        row_count=len(d.rows),
    )


async def read(
    session: AsyncSession,
    store: MediaStore,
    settings: Settings,
    d: Disclosure,
    *,
    now: datetime,
    staff: bool,
) -> DisclosureRead | StaffDisclosureRead:
    names = await region_names(session, [d.region_code])
    versions = await service.history(session, d, public=not staff)
    media = {
        m.id: m
        for m in (
            await session.execute(select(Media).where(Media.id.in_(d.attachment_ids)))
        ).scalars()
    }
    attachments = []
    for mid in d.attachment_ids:
        m = media.get(mid)
        url = await media_service.link(store, settings, m, now=now) if m else None
        if m is not None and url is not None:
            attachments.append(
                Attachment(
                    id=m.id, kind=m.kind.value, content_type=m.content_type, size=m.size, url=url
                )
            )
    reviewer = await session.get(StaffUser, d.reviewer_id) if d.reviewer_id else None
    tx = await taxonomy_service.snapshot(session)
    code = service.QUESTION_ITEM[d.category]
    rows = d.rows if staff else [rowlib.public_row(d.category, r) for r in d.rows]
    fields = {
        **brief(d, names.get(d.region_code, d.region_code)).model_dump(),
        "body": d.body if staff else rowlib.mask_text(d.body),
        "rows": rows,
        "totals": Totals(
            opening_balance=service.yuan(d.opening_fen),
            income=service.yuan(d.income_fen),
            expense=service.yuan(d.expense_fen),
            closing_balance=service.yuan(d.closing_fen),
        ),
        "attachments": attachments,
        "reviewer_name": reviewer.display_name if reviewer else None,
        "supersedes_id": d.supersedes_id,
        "superseded_by_id": d.superseded_by_id,
        "correction_reason": d.correction_reason,
        "withdraw_reason": d.withdraw_reason,
        "history": [
            VersionBrief(
                id=v.id,
                version=v.version,
                status=v.status,
                published_at=v.published_at,
                correction_reason=v.correction_reason,
            )
            for v in versions
        ],
        "question_item": QuestionItem(
            code=code, name=tx.items[code].name if code in tx.items else code
        ),
    }
    if staff:
        return StaffDisclosureRead(
            **fields,
            lock_version=d.lock_version,
            author_id=d.author_id,
            last_editor_id=d.last_editor_id,
            reviewer_id=d.reviewer_id,
        )
    return DisclosureRead(**fields)


async def reference(
    session: AsyncSession, disclosure_id: int | None, row: int | None
) -> DisclosureRef | None:
    """For a case file: the version and line asked about, as residents saw it."""
    if disclosure_id is None:
        return None
    d = await session.get(Disclosure, disclosure_id)
    if d is None:
        return None
    line = d.rows[row - 1] if row is not None and 1 <= row <= len(d.rows) else None
    return DisclosureRef(
        id=d.id,
        version=d.version,
        title=d.title,
        category=d.category,
        period=d.period,
        status=d.status,
        row_number=row,
        row=rowlib.public_row(d.category, line) if line is not None else None,
    )
