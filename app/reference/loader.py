"""Reading and validating the shipped reference files, with no database.

Every problem is reported with the file and the row it is on, so a bad edit
to the data fails ``ydt seed`` with a message an administrator can act on.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypinyin import Style, lazy_pinyin

from app.models.enums import ItemClass, RegionLevel, Tier, UnitKind

DATA_DIR = Path(__file__).resolve().parent / "data"


class SeedValidationError(ValueError):
    """The reference files are inconsistent; ``problems`` names every bad row."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  - ".join(problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(
            f"reference data is invalid ({len(problems)} problems):\n  - {shown}{more}"
        )


@dataclass(frozen=True, slots=True)
class RegionRow:
    code: str
    name: str
    level: RegionLevel
    kind: str
    parent: str | None
    full_name: str


@dataclass(frozen=True, slots=True)
class GroupRow:
    code: str
    name: str
    focus: str


@dataclass(frozen=True, slots=True)
class DepartmentRow:
    code: str
    name: str
    full_name: str
    description: str
    group: str


@dataclass(frozen=True, slots=True)
class UnitRow:
    code: str
    name: str
    kind: UnitKind
    level: RegionLevel
    region: str
    group: str | None
    parent: str | None


@dataclass(frozen=True, slots=True)
class CategoryRow:
    code: str
    name: str
    sector: str
    description: str


@dataclass(frozen=True, slots=True)
class ItemRow:
    code: str
    category: str
    name: str
    guidance: str
    klass: ItemClass
    scope: RegionLevel
    department: str
    tier: Tier
    time_limit_days: int
    keywords: tuple[str, ...]
    retired: bool
    pinyin_initials: str


@dataclass(slots=True)
class TaxonomyBundle:
    version: str
    checksum: str
    categories: list[CategoryRow]
    items: list[ItemRow]


@dataclass(slots=True)
class ReferenceBundle:
    regions: list[RegionRow]
    groups: list[GroupRow]
    departments: list[DepartmentRow]
    units: list[UnitRow]
    taxonomies: list[TaxonomyBundle] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SeedValidationError([f"{path}: file is missing"]) from exc
    except json.JSONDecodeError as exc:
        raise SeedValidationError([f"{path}: not valid JSON ({exc})"]) from exc


def _duplicates(codes: list[str]) -> list[str]:
    return sorted(code for code, n in Counter(codes).items() if n > 1)


def pinyin_initials(text: str) -> str:
    return "".join(
        p[0] for p in lazy_pinyin(text, style=Style.NORMAL) if p and p[0].isalnum()
    ).lower()


def _full_names(rows: list[dict[str, Any]]) -> dict[str, str]:
    by_code = {r["code"]: r for r in rows if isinstance(r, dict) and "code" in r}
    out: dict[str, str] = {}
    for code, row in by_code.items():
        parts = [row["name"]]
        parent = row.get("parent")
        guard = 0
        while parent and parent in by_code and guard < 5:
            parts.append(by_code[parent]["name"])
            parent = by_code[parent].get("parent")
            guard += 1
        out[code] = "".join(reversed(parts))
    return out


def load_regions(path: Path, problems: list[str]) -> list[RegionRow]:
    raw = _read_json(path)
    rows: list[RegionRow] = []
    if not isinstance(raw, list):
        problems.append(f"{path.name}: expected a list of regions")
        return rows
    full = _full_names(raw)
    dup = _duplicates([r.get("code", "") for r in raw])
    if dup:
        problems.append(f"{path.name}: duplicate region codes {dup}")
    seen: dict[str, RegionLevel] = {}
    for i, r in enumerate(raw, start=1):
        where = f"{path.name} row {i} ({r.get('code')} {r.get('name')})"
        try:
            level = RegionLevel(r["level"])
        except (KeyError, ValueError):
            problems.append(f"{where}: unknown level {r.get('level')!r}")
            continue
        code, parent = str(r.get("code", "")), r.get("parent")
        if len(code) != 12 or not code.isdigit():
            problems.append(f"{where}: code must be 12 digits")
        if level is RegionLevel.city:
            if parent is not None:
                problems.append(f"{where}: the city has no parent")
        elif parent not in seen:
            problems.append(f"{where}: parent {parent!r} is missing or listed after the child")
        elif seen[parent] is not level.parent():
            problems.append(f"{where}: parent {parent} is not one level up")
        seen[code] = level
        rows.append(
            RegionRow(
                code=code,
                name=str(r.get("name", "")),
                level=level,
                kind=str(r.get("kind", "")),
                parent=parent,
                full_name=full.get(code, str(r.get("name", ""))),
            )
        )
    return rows


def load_departments(path: Path, problems: list[str]) -> list[DepartmentRow]:
    raw = _read_json(path)
    departments: list[DepartmentRow] = []
    if not isinstance(raw, list):
        problems.append(f"{path.name}: expected a list of departments")
        return departments
    dup = _duplicates([d.get("code", "") for d in raw])
    if dup:
        problems.append(f"{path.name}: duplicate department codes {dup}")
    for i, d in enumerate(raw, start=1):
        where = f"{path.name} row {i} ({d.get('code')} {d.get('name')})"
        missing = [k for k in ("code", "name", "full_name", "group") if not d.get(k)]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        departments.append(
            DepartmentRow(
                code=d["code"],
                name=d["name"],
                full_name=d["full_name"],
                description=d.get("description", ""),
                group=d["group"],
            )
        )
    return departments


def load_taxonomy(
    version_dir: Path, department_codes: set[str], problems: list[str]
) -> tuple[TaxonomyBundle, list[GroupRow]]:
    cat_path = version_dir / "categories.json"
    head = _read_json(cat_path)
    version = str(head.get("version", version_dir.name))
    expected = head.get("expected", {})
    groups = [
        GroupRow(code=g["code"], name=g["name"], focus=g.get("focus", ""))
        for g in head.get("groups", [])
    ]
    categories: list[CategoryRow] = []
    for i, c in enumerate(head.get("categories", []), start=1):
        where = f"{version}/categories.json row {i} ({c.get('code')} {c.get('name')})"
        if not c.get("code") or not c.get("name"):
            problems.append(f"{where}: missing code or name")
            continue
        categories.append(
            CategoryRow(
                code=c["code"],
                name=c["name"],
                sector=c.get("sector", "other"),
                description=c.get("description", ""),
            )
        )
    dup = _duplicates([c.code for c in categories])
    if dup:
        problems.append(f"{version}/categories.json: duplicate category codes {dup}")
    category_codes = {c.code for c in categories}

    item_files = sorted(version_dir.glob("items*.json"))
    if not item_files:
        problems.append(f"{version}: no items*.json files")
    items: list[ItemRow] = []
    digest = hashlib.sha256(cat_path.read_bytes())
    for path in item_files:
        digest.update(path.read_bytes())
        raw = _read_json(path)
        if not isinstance(raw, list):
            problems.append(f"{version}/{path.name}: expected a list of items")
            continue
        for i, it in enumerate(raw, start=1):
            where = f"{version}/{path.name} row {i} ({it.get('code')} {it.get('name')})"
            row = _parse_item(it, where, category_codes, department_codes, problems)
            if row is not None:
                items.append(row)
    dup = _duplicates([it.code for it in items])
    if dup:
        problems.append(f"{version}: duplicate item codes {dup}")

    used_departments = {it.department for it in items}
    for label, actual in (
        ("categories", len(categories)),
        ("items", len(items)),
        ("departments", len(used_departments)),
    ):
        want = expected.get(label)
        if want is not None and actual != want:
            problems.append(f"{version}: expected {want} {label}, found {actual}")
    bundle = TaxonomyBundle(
        version=version, checksum=digest.hexdigest(), categories=categories, items=items
    )
    return bundle, groups


def _parse_item(
    it: dict[str, Any],
    where: str,
    category_codes: set[str],
    department_codes: set[str],
    problems: list[str],
) -> ItemRow | None:
    before = len(problems)
    for key in (
        "code",
        "category",
        "name",
        "guidance",
        "class",
        "scope",
        "tier",
        "time_limit_days",
    ):
        if it.get(key) in (None, ""):
            problems.append(f"{where}: missing {key}")
    if not it.get("department"):
        problems.append(f"{where}: item has no department")
    elif it["department"] not in department_codes:
        problems.append(f"{where}: unknown department {it['department']!r}")
    if it.get("category") and it["category"] not in category_codes:
        problems.append(f"{where}: unknown category {it['category']!r}")
    if (
        it.get("code")
        and it.get("category")
        and not str(it["code"]).startswith(str(it["category"]))
    ):
        problems.append(f"{where}: code must start with its category code")
    try:
        klass = ItemClass(str(it.get("class")))
        scope = RegionLevel(str(it.get("scope")))
        tier = Tier(str(it.get("tier")))
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    days = it.get("time_limit_days")
    if not isinstance(days, int) or days not in tier.allowed_days():
        problems.append(
            f"{where}: time_limit_days {days!r} outside the {tier.value} tier "
            f"({tier.allowed_days().start}–{tier.allowed_days().stop - 1})"
        )
    keywords = it.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        problems.append(f"{where}: keywords must be a list of strings")
        keywords = []
    if len(problems) > before:
        return None
    return ItemRow(
        code=str(it["code"]),
        category=str(it["category"]),
        name=str(it["name"]),
        guidance=str(it["guidance"]),
        klass=klass,
        scope=scope,
        department=str(it["department"]),
        tier=tier,
        time_limit_days=int(days),  # type: ignore[arg-type]
        keywords=tuple(keywords),
        retired=bool(it.get("retired", False)),
        pinyin_initials=pinyin_initials(str(it["name"])),
    )


def load_units(
    path: Path, region_codes: set[str], group_codes: set[str], problems: list[str]
) -> list[UnitRow]:
    raw = _read_json(path)
    units: list[UnitRow] = []
    dup = _duplicates([u.get("code", "") for u in raw])
    if dup:
        problems.append(f"{path.name}: duplicate unit codes {dup}")
    codes = {u.get("code") for u in raw}
    for i, u in enumerate(raw, start=1):
        where = f"{path.name} row {i} ({u.get('code')} {u.get('name')})"
        if not u.get("region"):
            problems.append(f"{where}: unit has no region")
            continue
        if u["region"] not in region_codes:
            problems.append(f"{where}: unknown region {u['region']!r}")
            continue
        try:
            kind, level = UnitKind(u["kind"]), RegionLevel(u["level"])
        except (KeyError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        group = u.get("group")
        if (kind is UnitKind.resident_group) != bool(group):
            problems.append(f"{where}: only resident groups carry a group code")
        if group and group not in group_codes:
            problems.append(f"{where}: unknown group {group!r}")
        if u.get("parent") and u["parent"] not in codes:
            problems.append(f"{where}: unknown parent unit {u['parent']!r}")
        units.append(
            UnitRow(
                code=u["code"],
                name=u["name"],
                kind=kind,
                level=level,
                region=u["region"],
                group=group,
                parent=u.get("parent"),
            )
        )
    return units


def load_bundle(data_dir: Path | None = None) -> ReferenceBundle:
    """Parse and cross-check every reference file; raise with all problems at once."""
    data_dir = data_dir or DATA_DIR
    problems: list[str] = []
    regions = load_regions(data_dir / "regions.json", problems)
    departments = load_departments(data_dir / "departments.json", problems)
    department_codes = {d.code for d in departments}
    taxonomies: list[TaxonomyBundle] = []
    groups: list[GroupRow] = []
    for version_dir in sorted(p for p in (data_dir / "taxonomy").iterdir() if p.is_dir()):
        bundle, version_groups = load_taxonomy(version_dir, department_codes, problems)
        taxonomies.append(bundle)
        groups = version_groups or groups
    group_codes = {g.code for g in groups}
    for d in departments:
        if d.group not in group_codes:
            problems.append(f"departments.json ({d.code} {d.name}): unknown group {d.group!r}")
    units = load_units(data_dir / "units.json", {r.code for r in regions}, group_codes, problems)
    if problems:
        raise SeedValidationError(problems)
    return ReferenceBundle(
        regions=regions, groups=groups, departments=departments, units=units, taxonomies=taxonomies
    )
