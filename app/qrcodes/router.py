from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from app.core.deps import ClockDep, ReadSessionDep, SettingsDep, WeChatDep
from app.qrcodes import service
from app.staff.dependencies import ReadingStaff

router = APIRouter(prefix="/staff", tags=["qrcodes"])


@router.get(
    "/qrcodes/{region_code}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the poster image"},
        502: {"description": "WeChat sent a mini-program code that is not an image"},
    },
)
async def qrcode_poster(
    region_code: Annotated[str, Path(pattern=r"^\d{12}$")],
    _: ReadingStaff,
    session: ReadSessionDep,
    settings: SettingsDep,
    wechat: WeChatDep,
    clock: ClockDep,
) -> Response:
    png = await service.poster(
        session, region_code, settings=settings, wechat=wechat, now=clock.now()
    )
    return Response(
        content=png,
        media_type="image/png",
        headers={
            "Content-Disposition": f'inline; filename="qr-{region_code}.png"',
            "Cache-Control": "private, max-age=3600",
        },
    )
