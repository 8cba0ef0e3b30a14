"""Reference data: the region tree, departments, supervision units, taxonomy.

Loaded by ``ydt seed`` from versioned files under ``app/reference/data``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models._types import str_enum
from app.models.enums import ItemClass, RegionLevel, Tier, UnitKind


class Region(Base):
    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(160))
    level: Mapped[RegionLevel] = mapped_column(str_enum(RegionLevel, "region_level"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(
        ForeignKey("regions.code", ondelete="RESTRICT"), index=True
    )
    # The QR scene posted in a village; short enough for wxacode (<= 32 chars).
    scene: Mapped[str | None] = mapped_column(String(32), unique=True)

    __table_args__ = (CheckConstraint("length(code) = 12", name="code_12_digits"),)


class ResidentGroup(Base):
    """A template of 派驻纪检监察组; instantiated as a unit at city and each county."""

    __tablename__ = "resident_groups"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    focus: Mapped[str] = mapped_column(Text, default="")


class Department(Base):
    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    group_code: Mapped[str] = mapped_column(ForeignKey("resident_groups.code"), index=True)


class SupervisionUnit(Base):
    __tablename__ = "supervision_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[UnitKind] = mapped_column(str_enum(UnitKind, "unit_kind"), index=True)
    level: Mapped[RegionLevel] = mapped_column(str_enum(RegionLevel, "unit_level"))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    group_code: Mapped[str | None] = mapped_column(ForeignKey("resident_groups.code"))
    # The unit one level up, which takes over an escalated case.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("supervision_units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        CheckConstraint(
            "(kind = 'resident_group') = (group_code IS NOT NULL)", name="group_only_for_groups"
        ),
    )


class TaxonomyVersion(Base):
    __tablename__ = "taxonomy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(16), unique=True)
    checksum: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime]
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the first complaint is filed under this version: from then on
    # the version is immutable (a changed file must ship as a new version).
    first_used_at: Mapped[datetime | None]


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_versions.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(4))
    name: Mapped[str] = mapped_column(String(64))
    sector: Mapped[str] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("version_id", "code"),)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("taxonomy_versions.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(8), index=True)
    name: Mapped[str] = mapped_column(String(80))
    guidance: Mapped[str] = mapped_column(Text)
    klass: Mapped[ItemClass] = mapped_column(str_enum(ItemClass, "item_class"))
    scope: Mapped[RegionLevel] = mapped_column(str_enum(RegionLevel, "item_scope"))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    tier: Mapped[Tier] = mapped_column(str_enum(Tier, "item_tier"))
    time_limit_days: Mapped[int] = mapped_column(Integer)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    pinyin_initials: Mapped[str] = mapped_column(String(80), default="")
    position: Mapped[int] = mapped_column(Integer)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("version_id", "code"),
        CheckConstraint("time_limit_days BETWEEN 1 AND 90", name="time_limit_range"),
    )

    def as_dict(self) -> dict[str, Any]:
        return {c.key: getattr(self, c.key) for c in self.__table__.columns}
