from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, NotFound
from app.models import Region
from app.models.enums import RegionLevel
from app.regions import repository
from app.regions.schemas import RegionBrief, RegionRead, SceneRead


class RegionNotFound(NotFound):
    code = "region_not_found"


class SceneNotFound(NotFound):
    code = "scene_not_found"


def _check_code(code: str) -> None:
    if len(code) != 12 or not code.isdigit():
        raise BadRequest("区划代码应为 12 位数字")


async def get_chain(session: AsyncSession, code: str) -> list[Region]:
    _check_code(code)
    path = await repository.chain(session, code)
    if not path or path[-1].code != code:
        raise RegionNotFound(f"区划 {code} 不存在")
    return path


def to_read(path: list[Region]) -> RegionRead:
    region = path[-1]
    return RegionRead(
        code=region.code,
        name=region.name,
        level=region.level,
        full_name=region.full_name,
        kind=region.kind,
        parent_code=region.parent_code,
        scene=region.scene,
        path=[RegionBrief.model_validate(r) for r in path],
    )


async def read(session: AsyncSession, code: str) -> RegionRead:
    return to_read(await get_chain(session, code))


async def children(
    session: AsyncSession, code: str, *, limit: int, offset: int
) -> list[RegionRead]:
    parent_path = await get_chain(session, code)
    rows = await repository.children(session, code, limit=limit, offset=offset)
    return [to_read([*parent_path, r]) for r in rows]


async def resolve_scene(session: AsyncSession, scene: str) -> SceneRead:
    if not scene or len(scene) > 32 or not scene.isascii():
        raise SceneNotFound("二维码无效，请扫描村（社区）公示栏上的二维码")
    region = await repository.get_by_scene(session, scene)
    if region is None:
        raise SceneNotFound("二维码无效或已停用，请扫描村（社区）公示栏上的最新二维码")
    path = await get_chain(session, region.code)
    by_level = {r.level: RegionBrief.model_validate(r) for r in path}
    return SceneRead(
        scene=scene,
        village=by_level[RegionLevel.village],
        township=by_level[RegionLevel.township],
        county=by_level[RegionLevel.county],
        city=by_level[RegionLevel.city],
        full_name=region.full_name,
    )
