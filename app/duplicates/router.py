"""Duplicate hints and following (residents); duplicate lists and merges (staff)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.auth.dependencies import CurrentCitizen
from app.complaints import identity
from app.core.deps import ClockDep, ReadSessionDep, SessionDep, SettingsDep, SharedDep
from app.core.ratelimit import enforce
from app.duplicates import service
from app.duplicates.schemas import (
    DuplicateList,
    FollowState,
    MergeRequest,
    MergeResult,
    SimilarQuery,
    SimilarResponse,
    UnmergeRequest,
)
from app.staff.dependencies import CurrentStaff, ReadingStaff

router = APIRouter(tags=["duplicates"])
HINTS_PER_MINUTE = 30
ComplaintId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/complaints/similar",
    response_model=SimilarResponse,
    summary="Open cases like the one being written (a hint before filing, never a block)",
    responses={429: {"description": "rate limited"}},
)
async def similar_complaints(
    body: SimilarQuery,
    citizen: CurrentCitizen,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    shared: SharedDep,
) -> SimilarResponse:
    now = clock.now()
    # Each hint tokenises up to a hundred texts: a budget per resident.
    await enforce(
        shared,
        f"similar:citizen:{identity.limit_key(citizen.id)}",
        limit=HINTS_PER_MINUTE,
        window_seconds=60,
        now=now,
        what="查询",
    )
    return await service.similar(session, citizen, body, settings=settings, now=now)


@router.post(
    "/complaints/{complaint_id}/follow",
    response_model=FollowState,
    summary="Follow (关注) someone else's open case instead of filing it again",
)
async def follow_complaint(
    complaint_id: ComplaintId, citizen: CurrentCitizen, session: SessionDep, clock: ClockDep
) -> FollowState:
    return await service.follow(session, citizen, complaint_id, now=clock.now())


@router.delete(
    "/complaints/{complaint_id}/follow", response_model=FollowState, summary="Stop following"
)
async def unfollow_complaint(
    complaint_id: ComplaintId, citizen: CurrentCitizen, session: SessionDep
) -> FollowState:
    return await service.unfollow(session, citizen, complaint_id)


@router.get(
    "/staff/complaints/{complaint_id}/duplicates",
    response_model=DuplicateList,
    tags=["workflow"],
    summary="Likely duplicates of a case, within the caller's scope",
)
async def case_duplicates(
    complaint_id: ComplaintId, user: ReadingStaff, session: ReadSessionDep, settings: SettingsDep
) -> DuplicateList:
    return await service.duplicates(session, user, complaint_id, settings=settings)


@router.post(
    "/staff/complaints/{complaint_id}/merge",
    response_model=MergeResult,
    tags=["workflow"],
    summary="Close this case as a duplicate of parent_id",
)
async def merge_case(
    complaint_id: ComplaintId,
    body: MergeRequest,
    user: CurrentStaff,
    session: SessionDep,
    clock: ClockDep,
) -> MergeResult:
    return await service.merge(session, user, complaint_id, body, now=clock.now())


@router.post(
    "/staff/complaints/{complaint_id}/unmerge",
    response_model=MergeResult,
    tags=["workflow"],
    summary="Undo a merge while the parent is open",
)
async def unmerge_case(
    complaint_id: ComplaintId,
    body: UnmergeRequest,
    user: CurrentStaff,
    session: SessionDep,
    clock: ClockDep,
) -> MergeResult:
    return await service.unmerge(session, user, complaint_id, body, now=clock.now())
