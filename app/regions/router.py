from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.core.deps import ReadSessionDep
from app.core.pagination import PageParams, page_params
from app.regions import service
from app.regions.schemas import RegionChildren, RegionRead, SceneRead

router = APIRouter(tags=["regions"])

RegionCode = Annotated[
    str, Path(min_length=1, max_length=32, description="12-digit statistical code")
]


@router.get("/regions/{code}", response_model=RegionRead)
async def get_region(code: RegionCode, session: ReadSessionDep) -> RegionRead:
    return await service.read(session, code)


@router.get("/regions/{code}/children", response_model=RegionChildren)
async def get_children(
    code: RegionCode, session: ReadSessionDep, page: Annotated[PageParams, Depends(page_params)]
) -> RegionChildren:
    items = await service.children(session, code, limit=page.limit, offset=page.offset)
    return RegionChildren(items=items, next_cursor=page.next_cursor(len(items)))


@router.get("/scenes/{scene}", response_model=SceneRead)
async def get_scene(
    scene: Annotated[str, Path(max_length=64)], session: ReadSessionDep
) -> SceneRead:
    return await service.resolve_scene(session, scene)
