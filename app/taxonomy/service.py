"""The taxonomy for the picker, search and suggestion.

The document and the search index are built once per taxonomy version and
process, and kept in a small cache keyed by the version's checksum, so a new
``ydt seed`` is picked up on the next request without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, ServiceUnavailable
from app.models import Item, TaxonomyVersion
from app.taxonomy import model as learned
from app.taxonomy import repository
from app.taxonomy.schemas import (
    CategoryRead,
    DepartmentBrief,
    ItemRead,
    SuggestionRead,
    SuggestResponse,
    TaxonomyRead,
)
from app.taxonomy.search import IndexedItem, TaxonomyIndex

logger = logging.getLogger(__name__)


class TaxonomyNotLoaded(ServiceUnavailable):
    code = "taxonomy_not_loaded"


class ItemNotFound(NotFound):
    code = "item_not_found"


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: str
    checksum: str
    document: TaxonomyRead
    body: bytes
    items: dict[str, ItemRead]
    index: TaxonomyIndex
    indexed: tuple[IndexedItem, ...]
    model_fp: str  # fingerprint of the shipped training data for these items

    @property
    def etag(self) -> str:
        return f'"tx-{self.version}-{self.checksum[:20]}"'


_cache: dict[str, Snapshot] = {}
_lock = asyncio.Lock()


async def current(session: AsyncSession) -> TaxonomyVersion:
    tv = await repository.current_version(session)
    if tv is None:
        raise TaxonomyNotLoaded("事项目录尚未加载，请管理员运行 ydt seed")
    return tv


async def snapshot(session: AsyncSession) -> Snapshot:
    tv = await current(session)
    cached = _cache.get(tv.checksum)
    if cached is not None:
        return cached
    async with _lock:
        cached = _cache.get(tv.checksum)
        if cached is None:
            cached = await _build(session, tv)
            _cache.clear()
            _cache[tv.checksum] = cached
    return cached


def item_read(item: Item, department_name: str, category_code: str) -> ItemRead:
    return ItemRead(
        code=item.code,
        name=item.name,
        description=item.guidance,
        klass=item.klass,
        class_label=item.klass.label,
        scope=item.scope,
        tier=item.tier,
        time_limit_days=item.time_limit_days,
        department=DepartmentBrief(code=item.department_code, name=department_name),
        keywords=list(item.keywords),
        category_code=category_code,
    )


async def _build(session: AsyncSession, tv: TaxonomyVersion) -> Snapshot:
    cats = await repository.categories(session, tv.id)
    rows = await repository.items_with_department(session, tv.id)
    code_of = {c.id: c.code for c in cats}
    by_category: dict[str, list[ItemRead]] = {c.code: [] for c in cats}
    indexed: list[IndexedItem] = []
    items: dict[str, ItemRead] = {}
    cat_name = {c.code: c.name for c in cats}
    for item, dept_name in rows:
        if item.retired:
            continue
        read = item_read(item, dept_name, code_of[item.category_id])
        items[item.code] = read
        by_category[read.category_code].append(read)
        indexed.append(
            IndexedItem(
                code=item.code,
                name=item.name,
                category_code=read.category_code,
                category_name=cat_name[read.category_code],
                keywords=tuple(item.keywords),
                guidance=item.guidance,
                pinyin_initials=item.pinyin_initials,
                klass=item.klass.value,
            )
        )
    document = TaxonomyRead(
        version=tv.version,
        item_count=len(items),
        categories=[
            CategoryRead(
                code=c.code,
                name=c.name,
                sector=c.sector,
                description=c.description,
                items=by_category[c.code],
            )
            for c in cats
        ],
    )
    body = json.dumps(
        document.model_dump(mode="json", by_alias=True), ensure_ascii=False, separators=(",", ":")
    ).encode()
    index = await asyncio.to_thread(TaxonomyIndex, indexed)
    fp = await asyncio.to_thread(learned.shipped_fingerprint, indexed)
    return Snapshot(tv.version, tv.checksum, document, body, items, index, tuple(indexed), fp)


async def search_items(session: AsyncSession, q: str, *, limit: int) -> list[ItemRead]:
    snap = await snapshot(session)
    return [snap.items[i.code] for i in snap.index.search(q, limit=limit)]


_models: dict[Path, tuple[int, learned.TextModel]] = {}
_model_lock = asyncio.Lock()


async def corrections(session: AsyncSession) -> list[learned.Example]:
    return [learned.Example(text, item) for text, item in await repository.corrections(session)]


async def rebuild_model(session: AsyncSession, model_dir: Path) -> learned.TextModel:
    """Train on the shipped data plus every correction so far and replace the file."""
    snap = await snapshot(session)
    fixes = await corrections(session)
    model = await asyncio.to_thread(learned.build, snap.indexed, fixes)
    await asyncio.to_thread(learned.save, model, learned.model_path(model_dir, snap.model_fp))
    return model


async def learned_model(session: AsyncSession, model_dir: Path) -> learned.TextModel | None:
    """The model for the current items: cached per process, reloaded when a retrain
    replaced its file, built if missing. None (BM25 alone) if it cannot be had."""
    snap = await snapshot(session)
    path = learned.model_path(model_dir, snap.model_fp)
    cached = _models.get(path)
    if cached is not None and cached[0] == _mtime(path):
        return cached[1]
    async with _model_lock:
        mtime = _mtime(path)
        cached = _models.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            model = await asyncio.to_thread(learned.load, path) if mtime else None
            if model is None or model.fingerprint != snap.model_fp:
                model = await rebuild_model(session, model_dir)
                mtime = _mtime(path)
        except Exception:
            logger.exception("suggestion model unavailable; suggesting with BM25 alone")
            return None
        _models.clear()
        _models[path] = (mtime, model)
        return model


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


async def suggest(
    session: AsyncSession, text: str, *, limit: int = 5, model_dir: Path | None = None
) -> SuggestResponse:
    snap = await snapshot(session)
    model = await learned_model(session, model_dir) if model_dir is not None else None
    found = await asyncio.to_thread(snap.index.suggest, text, limit=limit, model=model)
    return SuggestResponse(
        version=snap.version,
        suggestions=[
            SuggestionRead(item=snap.items[s.code], score=s.score, matched=list(s.matched))
            for s in found
        ],
    )
