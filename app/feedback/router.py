from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from app.auth.dependencies import CitizenTokenDep
from app.core.db import write_session
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep
from app.core.pagination import PageParams, page_params
from app.core.schemas import DB_INT_MAX, DbId
from app.feedback import service
from app.feedback.schemas import (
    CallbackPage,
    CallbackRead,
    CallbackRecord,
    DrawRead,
    RatingCreate,
    RatingRead,
)
from app.models import Callback
from app.moderation.dependencies import judged_first
from app.staff.dependencies import CurrentStaff, ReadingStaff
from app.wechat.client import SCENE_COMMENT

router = APIRouter(tags=["feedback"])


@router.post("/complaints/{complaint_id}/rating", response_model=RatingRead, status_code=201)
async def rate(
    complaint_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: RatingCreate,
    request: Request,
    token: CitizenTokenDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> RatingRead:
    citizen, text = await judged_first(
        request, token, service.comment_of(body), scene=SCENE_COMMENT, what=service.WHAT_COMMENT
    )
    async with write_session(request) as session:
        return await service.rate(
            session, citizen, complaint_id, body, now=clock.now(), settings=settings, text=text
        )


def _cb(cb: Callback) -> CallbackRead:
    return CallbackRead(
        id=cb.id,
        draw_id=cb.draw_id,
        complaint_id=cb.complaint_id,
        unit_id=cb.unit_id,
        status=cb.status,
        method=cb.method,
        reached=cb.reached,
        resolved=cb.resolved,
        satisfaction=cb.satisfaction,
        fake_closure=cb.fake_closure,
        note=cb.note,
        done_at=cb.done_at,
    )


@router.post("/staff/callbacks/draw", response_model=DrawRead, status_code=201)
async def draw(
    quarter: Annotated[str, Query(min_length=6, max_length=7)],
    user: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> DrawRead:
    return await service.draw_callbacks(session, user, quarter, now=clock.now(), settings=settings)


@router.get("/staff/callbacks", response_model=CallbackPage)
async def list_callbacks(
    user: ReadingStaff,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    draw_id: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> CallbackPage:
    """``{items, next_cursor}``; ``draw_id`` narrows to one draw (optional)."""
    rows = await service.list_callbacks(
        session, user, draw_id, limit=page.limit, offset=page.offset
    )
    return CallbackPage(items=[_cb(cb) for cb in rows], next_cursor=page.next_cursor(len(rows)))


@router.post("/staff/callbacks/{callback_id}", response_model=CallbackRead)
async def record(
    callback_id: DbId,
    body: CallbackRecord,
    user: CurrentStaff,
    session: SessionDep,
    clock: ClockDep,
) -> CallbackRead:
    return _cb(await service.record_callback(session, user, callback_id, body, now=clock.now()))
