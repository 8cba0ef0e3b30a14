"""``ydt seed``: exact counts, idempotent, and every bad row named."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import create_engine
from app.models import Category, Department, Item, Region, SupervisionUnit, TaxonomyVersion
from app.reference import service
from app.reference.loader import DATA_DIR, SeedValidationError, load_bundle
from tests import support
from tests.conftest import DEFAULT_NOW, make_settings


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty migrated SQLite database of its own (seeding commits)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}"
    await asyncio.to_thread(support.alembic_upgrade, url)
    engine = create_engine(make_settings(database_url=url), url=url)
    yield engine
    await engine.dispose()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def edit(path: Path, fn: Any) -> None:
    value = json.loads(path.read_text(encoding="utf-8"))
    value = fn(value) or value
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


async def count(session: AsyncSession, model: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


class TestShippedData:
    def test_counts_are_exactly_83_517_107(self) -> None:
        bundle = load_bundle()
        (tx,) = bundle.taxonomies
        assert len(tx.categories) == 83
        assert len(tx.items) == 517
        assert len(bundle.departments) == 107
        assert len({i.department for i in tx.items}) == 107

    def test_no_placeholder_names(self) -> None:
        tx = load_bundle().taxonomies[0]
        names = [c.name for c in tx.categories] + [i.name for i in tx.items]
        assert not [
            n for n in names if any(ch.isdigit() for ch in n) and ("类别" in n or "事项" in n)
        ]
        assert len(set(i.name for i in tx.items)) == 517

    def test_every_item_has_guidance_keywords_and_a_valid_time_limit(self) -> None:
        for it in load_bundle().taxonomies[0].items:
            assert it.guidance and len(it.keywords) >= 3, it.code
            assert it.time_limit_days in it.tier.allowed_days(), it.code

    def test_seed_regions_from_the_articles_are_present(self) -> None:
        names = {r.name for r in load_bundle().regions}
        assert {"通川区", "凤北街道", "双鱼湖社区", "青花镇", "立信社区"} <= names


class TestSeeding:
    async def test_seed_loads_everything_and_is_idempotent(self, fresh: AsyncEngine) -> None:
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            first = await service.seed(s, now=DEFAULT_NOW)
            await s.commit()
        assert first.counts["items"]["inserted"] == 517
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            second = await service.seed(s, now=DEFAULT_NOW)
            await s.commit()
            assert await count(s, Item) == 517
            assert await count(s, Category) == 83
            assert await count(s, Department) == 107
            assert await count(s, Region) == len(load_bundle().regions)
            assert await count(s, SupervisionUnit) == len(load_bundle().units)
            village = await s.get(Region, "511702005001")
            assert village is not None and village.full_name == "达州市通川区凤北街道双鱼湖社区"
            assert village.scene == "511702005001"
        for table, c in second.counts.items():
            assert c["inserted"] == 0 and c["updated"] == 0, (table, c)

    async def test_an_edited_region_is_updated_in_place(
        self, fresh: AsyncEngine, data: Path
    ) -> None:
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            await service.seed(s, now=DEFAULT_NOW, data_dir=data)
            await s.commit()
        edit(
            data / "regions.json",
            lambda rows: [
                {**r, "name": "双鱼湖社区（新）"} if r["code"] == "511702005001" else r
                for r in rows
            ],
        )
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            report = await service.seed(s, now=DEFAULT_NOW, data_dir=data)
            await s.commit()
            region = await s.get(Region, "511702005001")
        assert report.counts["regions"]["updated"] == 1
        assert region is not None and region.name == "双鱼湖社区（新）"


class TestValidation:
    def _fails(self, data: Path, *needles: str) -> None:
        with pytest.raises(SeedValidationError) as err:
            load_bundle(data)
        text = str(err.value)
        for needle in needles:
            assert needle in text, text

    def test_duplicate_item_code(self, data: Path) -> None:
        path = data / "taxonomy/v1/items_01_28.json"
        edit(path, lambda rows: [*rows, rows[0]])
        self._fails(data, "duplicate item codes ['0101']", "expected 517 items, found 518")

    def test_item_without_department_names_the_row(self, data: Path) -> None:
        path = data / "taxonomy/v1/items_01_28.json"
        edit(path, lambda rows: [{**rows[0], "department": ""}, *rows[1:]])
        self._fails(data, "items_01_28.json row 1 (0101", "item has no department")

    def test_unknown_department(self, data: Path) -> None:
        path = data / "taxonomy/v1/items_29_56.json"
        edit(path, lambda rows: [*rows[:2], {**rows[2], "department": "D999"}, *rows[3:]])
        self._fails(data, "items_29_56.json row 3", "unknown department 'D999'")

    def test_wrong_counts(self, data: Path) -> None:
        path = data / "taxonomy/v1/items_57_83.json"
        edit(path, lambda rows: rows[:-1])
        self._fails(data, "expected 517 items, found 516")

    def test_unit_without_region(self, data: Path) -> None:
        edit(data / "units.json", lambda rows: [*rows[:4], {**rows[4], "region": None}, *rows[5:]])
        self._fails(data, "units.json row 5", "unit has no region")

    def test_time_limit_outside_tier(self, data: Path) -> None:
        path = data / "taxonomy/v1/items_01_28.json"
        edit(path, lambda rows: [{**rows[0], "tier": "general", "time_limit_days": 30}, *rows[1:]])
        self._fails(data, "row 1 (0101", "outside the general tier")

    def test_region_whose_parent_is_missing(self, data: Path) -> None:
        edit(
            data / "regions.json",
            lambda rows: [
                *rows,
                {
                    "code": "511799001001",
                    "name": "幽灵村",
                    "level": "village",
                    "kind": "village",
                    "parent": "511799001000",
                },
            ],
        )
        self._fails(data, "511799001001 幽灵村", "parent '511799001000' is missing")

    def test_broken_json_is_reported_with_the_file(self, data: Path) -> None:
        (data / "departments.json").write_text("[{", encoding="utf-8")
        self._fails(data, "departments.json: not valid JSON")


class TestVersions:
    async def test_used_version_is_immutable_and_v2_keeps_v1_items(
        self, fresh: AsyncEngine, data: Path
    ) -> None:
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            await service.seed(s, now=DEFAULT_NOW, data_dir=data)
            tv = (await s.execute(select(TaxonomyVersion))).scalar_one()
            tv.first_used_at = DEFAULT_NOW  # a complaint was filed under v1
            await s.commit()
            old_item_id = (await s.execute(select(Item.id).where(Item.code == "0101"))).scalar_one()

        path = data / "taxonomy/v1/items_01_28.json"
        edit(path, lambda rows: [{**rows[0], "name": rows[0]["name"] + "（修订）"}, *rows[1:]])
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            with pytest.raises(SeedValidationError, match="immutable"):
                await service.seed(s, now=DEFAULT_NOW, data_dir=data)

        # Ship the change as v2 (with 0102 retired) instead.
        shutil.move(data / "taxonomy/v1", data / "taxonomy/v2")
        shutil.copytree(DATA_DIR / "taxonomy/v1", data / "taxonomy/v1")
        edit(data / "taxonomy/v2/categories.json", lambda d: {**d, "version": "v2"})
        edit(
            path.parent.parent / "v2/items_01_28.json",
            lambda rows: [rows[0], {**rows[1], "retired": True}, *rows[2:]],
        )
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            await service.seed(s, now=DEFAULT_NOW + timedelta(days=1), data_dir=data)
            await s.commit()
            versions = {v.version: v for v in (await s.execute(select(TaxonomyVersion))).scalars()}
            assert versions["v2"].is_current and not versions["v1"].is_current
            old = await s.get(Item, old_item_id)
            assert old is not None and old.version_id == versions["v1"].id
            assert not old.name.endswith("（修订）")
            retired = (
                await s.execute(
                    select(Item).where(Item.code == "0102", Item.version_id == versions["v2"].id)
                )
            ).scalar_one()
            assert retired.retired

    async def test_unused_version_is_replaced_in_place(
        self, fresh: AsyncEngine, data: Path
    ) -> None:
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            await service.seed(s, now=DEFAULT_NOW, data_dir=data)
            await s.commit()
        path = data / "taxonomy/v1/items_01_28.json"
        edit(path, lambda rows: [{**rows[0], "name": "村级财务收支不公开（新）"}, *rows[1:]])
        async with AsyncSession(fresh, expire_on_commit=False) as s:
            report = await service.seed(s, now=DEFAULT_NOW, data_dir=data)
            await s.commit()
            name = (await s.execute(select(Item.name).where(Item.code == "0101"))).scalar_one()
        assert report.counts["taxonomy_versions"]["updated"] == 1
        assert name == "村级财务收支不公开（新）"
