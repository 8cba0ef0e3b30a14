from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from app.models.enums import RegionLevel


class RegionBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: RegionLevel


class RegionRead(RegionBrief):
    full_name: str
    kind: str
    parent_code: str | None
    scene: str | None
    path: list[RegionBrief]


class RegionChildren(BaseModel):
    items: list[RegionRead]
    next_cursor: str | None = None


class SceneRead(BaseModel):
    scene: str
    village: RegionBrief
    township: RegionBrief
    county: RegionBrief
    city: RegionBrief
    full_name: str
