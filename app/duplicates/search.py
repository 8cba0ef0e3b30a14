"""Queue search by meaning as well as by exact words.

A staff member searching "路灯不亮" wants the case written "三组的灯坏了好久
莫人修". Beside the exact match (tracking number, or the words as typed),
a case matches when its item is one the taxonomy suggester ranks at the top
for the query (what the words *mean*) and its text shares a query word or
character bigram, or
when its text holds every query word in any order. Dialect is normalised the
way the suggester does it. All of it becomes one SQL condition, so the
queue's paging, ordering and scope are untouched.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Complaint
from app.taxonomy import service as taxonomy_service
from app.taxonomy.search import normalise, tokens

MAX_TERMS = 6
MEANING_ITEMS = 3
MIN_RELATIVE_SCORE = 0.6


def terms(q: str, kind: str = "w") -> list[str]:
    """The query's words (jieba search mode, dialect normalised) or, with
    ``kind="c"``, its character bigrams; longest first."""
    found = {t[2:] for t in tokens(normalise(q)) if t.startswith(f"{kind}:") and len(t) > 3}
    return sorted(found, key=lambda w: (-len(w), w))[:MAX_TERMS]


def _has(word: str) -> ColumnElement[bool]:
    return Complaint.content.contains(word, autoescape=True)


async def condition(session: AsyncSession, q: str) -> ColumnElement[bool]:
    needle = q.strip()
    found: list[ColumnElement[bool]] = [
        Complaint.tracking_no == needle.upper(),
        _has(needle),
    ]
    words = [w for w in terms(needle) if w != needle]
    if len(words) > 1:
        found.append(and_(*[_has(w) for w in words]))
    try:
        snap = await taxonomy_service.snapshot(session)
    except taxonomy_service.TaxonomyNotLoaded:  # no taxonomy yet: exact words only
        return or_(*found)
    items = [
        s.code
        for s in snap.index.suggest(needle, limit=MEANING_ITEMS)
        if s.score >= MIN_RELATIVE_SCORE
    ]
    shared = sorted({*words, *terms(needle, "c")})[: 2 * MAX_TERMS]
    if items and shared:
        found.append(and_(Complaint.item_code.in_(items), or_(*[_has(w) for w in shared])))
    return or_(*found)
