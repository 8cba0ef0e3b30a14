from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from app.core.deps import ReadSessionDep, SessionDep, SettingsDep
from app.taxonomy import service
from app.taxonomy.schemas import ItemSearchResult, SuggestRequest, SuggestResponse, TaxonomyRead

router = APIRouter(prefix="/taxonomy", tags=["taxonomy"])


@router.get(
    "",
    response_model=TaxonomyRead,
    responses={304: {"description": "not modified (If-None-Match matched the ETag)"}},
    summary="All categories with their items, for the picker (cacheable, ETag)",
)
async def get_taxonomy(
    session: ReadSessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    snap = await service.snapshot(session)
    headers = {"ETag": snap.etag, "Cache-Control": "public, max-age=300"}
    if if_none_match and snap.etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(content=snap.body, media_type="application/json", headers=headers)


@router.get(
    "/items",
    response_model=ItemSearchResult,
    summary="Search items by Chinese text or pinyin initials",
)
async def search_items(
    session: ReadSessionDep,
    q: Annotated[str, Query(min_length=1, max_length=50)],
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> ItemSearchResult:
    return ItemSearchResult(items=await service.search_items(session, q, limit=limit))


@router.post(
    "/suggest", response_model=SuggestResponse, summary="Top 5 items for a free-text description"
)
async def suggest(
    body: SuggestRequest, session: SessionDep, settings: SettingsDep
) -> SuggestResponse:
    return await service.suggest(session, body.text, model_dir=settings.model_dir)
