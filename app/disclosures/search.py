"""Finding published disclosures, by what residents can read in them.

Search looks inside the rows too (a row that says 招待 finds its disclosure),
but only at the masked text residents see: a search must never confirm what a
mask hides (a recipient's full name, an ID or phone number).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import ColumnElement, Text, and_, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.disclosures import rows as rowlib
from app.models import Disclosure
from app.models.enums import DisclosureCategory, DisclosureStatus
from app.regions.repository import prefix_of


async def public_list(
    session: AsyncSession,
    *,
    region_code: str,
    category: DisclosureCategory | None,
    period: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> list[Disclosure]:
    """Published versions in a region, newest first.

    With ``q``, the database narrows the candidates to disclosures whose raw
    title, body or rows contain the words (one LIKE scan of the region's
    published versions, the same SQL on SQLite and PostgreSQL); each
    candidate is then checked against what a resident actually sees, so a
    masked name, ID or phone number, or a JSON key, never matches: a search
    must not tell anyone what the masks hide. ``offset`` counts confirmed
    matches, so pages stay stable.
    """
    stmt = (
        select(Disclosure)
        .where(list_filter(region_code=region_code, category=category, period=period, q=q))
        .order_by(Disclosure.published_at.desc(), Disclosure.id.desc())
    )
    if not q:
        return list((await session.execute(stmt.offset(offset).limit(limit))).scalars())
    needle = q.casefold()
    # Nearly every candidate is a match (the SQL saw the words): fetch what
    # the page needs, and more only when masks or keys caused false hits.
    batch = max(1, min(offset + limit, SEARCH_BATCH))
    found: list[Disclosure] = []
    skipped = start = 0
    while True:
        chunk = list((await session.execute(stmt.offset(start).limit(batch))).scalars())
        for d in chunk:
            if not public_match(d, needle):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(d)
            if len(found) == limit:
                return found
        if len(chunk) < batch:
            return found
        start += batch
        batch = SEARCH_BATCH


SEARCH_BATCH = 100


def public_text(d: Disclosure) -> Iterator[str]:
    """Every piece of text a resident reads in a disclosure, masked as shown."""
    yield d.title
    yield rowlib.mask_text(d.body)
    for row in d.rows:
        for value in rowlib.public_row(d.category, row).values():
            if value is not None:
                yield str(value)


def public_match(d: Disclosure, needle: str) -> bool:
    """``needle`` (case-folded) occurs in one piece of the resident's view."""
    return any(needle in text.casefold() for text in public_text(d))


def list_filter(
    *,
    region_code: str,
    category: DisclosureCategory | None,
    period: str | None,
    q: str | None,
) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = [Disclosure.status == DisclosureStatus.published]
    conds.append(Disclosure.region_code.startswith(prefix_of(region_code)))
    if category is not None:
        conds.append(Disclosure.category == category)
    if period:
        conds.append(Disclosure.period.startswith(period, autoescape=True))
    if q:
        # Rows are stored as JSON text: Chinese as itself since the columns
        # are written by orjson (app/core/jsoncodec.py), \u-escaped in rows
        # written before, or by its fallback: look for both spellings. A superset on purpose:
        # public_match() has the last word. Folding case over the rows' text
        # costs more than the scan (PostgreSQL, 1000 disclosures of 51 rows,
        # 9 MB of JSON: LIKE 90 ms, lower() LIKE 230 ms, ILIKE 440 ms), and only
        # ASCII letters have case: words without any take the plain LIKE.
        rows = cast(Disclosure.rows, Text)
        fold = any(c.isascii() and c.isalpha() for c in q)
        spellings = [
            Disclosure.title.icontains(q, autoescape=True),
            Disclosure.body.icontains(q, autoescape=True),
        ]
        for spelling in dict.fromkeys((q, json.dumps(q)[1:-1])):
            if fold:
                spellings.append(rows.icontains(spelling, autoescape=True))
            else:
                spellings.append(rows.contains(spelling, autoescape=True))
        conds.append(or_(*spellings))
    return and_(*conds)
