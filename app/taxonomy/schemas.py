from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from app.core.schemas import RequestModel
from app.models.enums import ItemClass, RegionLevel, Tier


class DepartmentBrief(BaseModel):
    code: str
    name: str


class ItemRead(BaseModel):
    code: str
    name: str
    description: str = Field(description="guidance: what belongs here and what does not")
    klass: ItemClass = Field(serialization_alias="class", validation_alias="klass")
    class_label: str
    scope: RegionLevel
    tier: Tier
    time_limit_days: int
    department: DepartmentBrief
    keywords: list[str]
    category_code: str


class CategoryRead(BaseModel):
    code: str
    name: str
    sector: str
    description: str
    items: list[ItemRead]


class TaxonomyRead(BaseModel):
    version: str
    categories: list[CategoryRead]
    item_count: int


class ItemSearchResult(BaseModel):
    items: list[ItemRead]
    next_cursor: str | None = None


class SuggestRequest(RequestModel):
    text: str = Field(min_length=1, max_length=2000)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("请描述您要反映的问题")
        return value


class SuggestionRead(BaseModel):
    item: ItemRead
    score: float = Field(description="relative to the best match (1.0)")
    matched: list[str] = Field(description="words of the text that matched")


class SuggestResponse(BaseModel):
    version: str
    suggestions: list[SuggestionRead]
