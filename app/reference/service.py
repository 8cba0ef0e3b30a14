"""Applying the reference bundle to the database, idempotently.

Rows are matched by their natural codes: a second run changes nothing, and an
edited row is updated in place. A taxonomy version is immutable once any
complaint was filed under it; a changed file must then ship as a new version,
and old complaints keep pointing at the items they were filed under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Category,
    Department,
    Item,
    Region,
    ResidentGroup,
    SupervisionUnit,
    TaxonomyVersion,
)
from app.models.enums import RegionLevel
from app.reference.loader import (
    ReferenceBundle,
    SeedValidationError,
    TaxonomyBundle,
    load_bundle,
)


@dataclass
class SeedReport:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def bump(self, table: str, what: str, n: int = 1) -> None:
        self.counts.setdefault(table, {"inserted": 0, "updated": 0, "unchanged": 0})[what] += n

    def render(self) -> str:
        lines = ["seed complete:"]
        for table, c in self.counts.items():
            lines.append(
                f"  {table:<18} inserted {c['inserted']:>4}  updated {c['updated']:>4}  "
                f"unchanged {c['unchanged']:>4}"
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _sync(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


async def _upsert(
    session: AsyncSession,
    model: Any,
    key: str,
    rows: list[dict[str, Any]],
    report: SeedReport,
    table: str,
) -> dict[str, Any]:
    existing = {getattr(o, key): o for o in (await session.execute(select(model))).scalars()}
    for values in rows:
        obj = existing.get(values[key])
        if obj is None:
            obj = model(**values)
            session.add(obj)
            existing[values[key]] = obj
            report.bump(table, "inserted")
        elif _sync(obj, values):
            report.bump(table, "updated")
        else:
            report.bump(table, "unchanged")
    await session.flush()
    return existing


def _version_key(version: str) -> tuple[int, str]:
    m = re.fullmatch(r"v(\d+)", version)
    return (int(m.group(1)) if m else 0, version)


async def seed(session: AsyncSession, *, now: datetime, data_dir: Path | None = None) -> SeedReport:
    bundle = load_bundle(data_dir)
    return await apply_bundle(session, bundle, now=now)


async def apply_bundle(
    session: AsyncSession, bundle: ReferenceBundle, *, now: datetime
) -> SeedReport:
    report = SeedReport()
    await _upsert(
        session,
        Region,
        "code",
        [
            {
                "code": r.code,
                "name": r.name,
                "full_name": r.full_name,
                "level": r.level,
                "kind": r.kind,
                "parent_code": r.parent,
                "scene": r.code if r.level is RegionLevel.village else None,
            }
            for r in bundle.regions
        ],
        report,
        "regions",
    )
    await _upsert(
        session,
        ResidentGroup,
        "code",
        [{"code": g.code, "name": g.name, "focus": g.focus} for g in bundle.groups],
        report,
        "resident_groups",
    )
    await _upsert(
        session,
        Department,
        "code",
        [
            {
                "code": d.code,
                "name": d.name,
                "full_name": d.full_name,
                "description": d.description,
                "group_code": d.group,
            }
            for d in bundle.departments
        ],
        report,
        "departments",
    )
    units = await _upsert(
        session,
        SupervisionUnit,
        "code",
        [
            {
                "code": u.code,
                "name": u.name,
                "kind": u.kind,
                "level": u.level,
                "region_code": u.region,
                "group_code": u.group,
            }
            for u in bundle.units
        ],
        report,
        "supervision_units",
    )
    for u in bundle.units:
        parent_id = units[u.parent].id if u.parent else None
        if units[u.code].parent_id != parent_id:
            units[u.code].parent_id = parent_id
    await session.flush()

    versions = sorted(bundle.taxonomies, key=lambda t: _version_key(t.version))
    for taxonomy in versions:
        await _apply_taxonomy(session, taxonomy, now=now, report=report)
    if versions:
        newest = versions[-1].version
        for tv in (await session.execute(select(TaxonomyVersion))).scalars():
            tv.is_current = tv.version == newest
        report.notes.append(f"current taxonomy version: {newest}")
    await session.flush()
    return report


async def _apply_taxonomy(
    session: AsyncSession, taxonomy: TaxonomyBundle, *, now: datetime, report: SeedReport
) -> None:
    tv = (
        await session.execute(
            select(TaxonomyVersion).where(TaxonomyVersion.version == taxonomy.version)
        )
    ).scalar_one_or_none()
    if tv is not None and tv.checksum == taxonomy.checksum:
        report.bump("taxonomy_versions", "unchanged")
        return
    if tv is not None and tv.first_used_at is not None:
        next_dir = f"taxonomy/v{_version_key(taxonomy.version)[0] + 1}/"
        raise SeedValidationError(
            [
                f"taxonomy {taxonomy.version} has been in use since "
                f"{tv.first_used_at:%Y-%m-%d} and is immutable; "
                f"ship the change as a new version directory (e.g. {next_dir})"
            ]
        )
    if tv is None:
        tv = TaxonomyVersion(
            version=taxonomy.version, checksum=taxonomy.checksum, loaded_at=now, is_current=False
        )
        session.add(tv)
        report.bump("taxonomy_versions", "inserted")
    else:
        # Unused so far: safe to replace wholesale.
        await session.execute(delete(Item).where(Item.version_id == tv.id))
        await session.execute(delete(Category).where(Category.version_id == tv.id))
        tv.checksum, tv.loaded_at = taxonomy.checksum, now
        report.bump("taxonomy_versions", "updated")
    await session.flush()

    categories: dict[str, Category] = {}
    for position, c in enumerate(taxonomy.categories, start=1):
        cat = Category(
            version_id=tv.id,
            code=c.code,
            name=c.name,
            sector=c.sector,
            description=c.description,
            position=position,
        )
        session.add(cat)
        categories[c.code] = cat
    await session.flush()
    session.add_all(
        Item(
            version_id=tv.id,
            category_id=categories[it.category].id,
            code=it.code,
            name=it.name,
            guidance=it.guidance,
            klass=it.klass,
            scope=it.scope,
            department_code=it.department,
            tier=it.tier,
            time_limit_days=it.time_limit_days,
            keywords=list(it.keywords),
            pinyin_initials=it.pinyin_initials,
            position=position,
            retired=it.retired,
        )
        for position, it in enumerate(taxonomy.items, start=1)
    )
    report.bump("categories", "inserted", len(taxonomy.categories))
    report.bump("items", "inserted", len(taxonomy.items))
    await session.flush()
