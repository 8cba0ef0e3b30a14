"""Offline intake (来访、来电、来信、走访、代办) and its printable receipt (回执).

The form posts to the same ``intake.register`` as ``POST /api/v1/staff/complaints``
(routing, deadlines and the chain are the same as online filings). The receipt
is the answer to that POST itself: a query code exists only at that moment
(only its hash is stored). A hidden one-time form id makes a reload or a
double click show the first registration instead of filing the case twice.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Path, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from app.console import evidence, lookups, navigation
from app.console.dependencies import ConsoleContext, Ctx, ReadingCsrfForm, ReadingCtx, field
from app.console.forms import error_text
from app.console.routing import console_router
from app.console.templating import redirect, render
from app.core import db, urls
from app.core.deps import ReadSessionDep, SessionDep, StoreDep
from app.core.errors import AppError, Forbidden
from app.core.qr import qr_svg
from app.idempotency import service as idempotency
from app.media.service import Staged
from app.models import IdempotencyRecord
from app.models.enums import Channel, RegionLevel, StaffRole
from app.workflow import intake
from app.workflow import queue as workflow_queue
from app.workflow.schemas import CaseFile, OfflineIntake

router = console_router(prefix="/console")

OFFLINE_CHANNELS: list[Channel] = [c for c in Channel if c not in (Channel.online, Channel.open311)]
ACCUSED_LEVELS = [
    (RegionLevel.village.value, "村（社区）干部"),
    (RegionLevel.township.value, "乡镇（街道）干部"),
    (RegionLevel.county.value, "县（区）级干部"),
    (RegionLevel.city.value, "市级干部"),
]
_FORM_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
NOT_REGISTRAR = "只有纪检干部和代办员可以登记"


def _channels(ctx: ConsoleContext) -> list[Channel]:
    if ctx.user.role is StaffRole.agent:
        return [Channel.agent]
    return OFFLINE_CHANNELS


async def _form_page(
    request: Request,
    ctx: ConsoleContext,
    session: AsyncSession,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    tz = ZoneInfo(ctx.settings.timezone)
    defaults: dict[str, Any] = {
        "received_at": ctx.now.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "form_id": secrets.token_urlsafe(18),
        "priority_flags": [],
    }
    return render(
        request,
        "intake.html",
        ctx=ctx,
        status_code=status_code,
        flash=("error", error) if error else None,
        v={**defaults, **(values or {})},
        channels=_channels(ctx),
        channel_labels=lookups.CHANNEL_LABELS,
        villages=await lookups.villages_in_reach(session, ctx.user),
        categories=await lookups.categories(session),
        accused_levels=ACCUSED_LEVELS,
        priorities=list(lookups.PRIORITY_LABELS.items()),
    )


@router.get("/intake")
async def intake_page(request: Request, ctx: ReadingCtx, session: ReadSessionDep) -> Response:
    if ctx.user.role not in navigation.REGISTRARS:
        raise Forbidden(NOT_REGISTRAR)
    return await _form_page(request, ctx, session)


def _payload(form: FormData, tz: ZoneInfo) -> dict[str, Any]:
    received = field(form, "received_at")
    if received:
        # A datetime-local field: local time without an offset (a bad one is
        # left as typed, for the model to name).
        with contextlib.suppress(ValueError):
            received = datetime.fromisoformat(received).replace(tzinfo=tz).isoformat()
    data: dict[str, Any] = {
        "channel": field(form, "channel"),
        "item_code": field(form, "item_code"),
        "region_code": field(form, "region_code"),
        "content": field(form, "content"),
        "anonymous": field(form, "anonymous") == "1",
        "decline_query_code": field(form, "decline_query_code") == "1",
        "priority_flags": [v for v in form.getlist("priority_flags") if isinstance(v, str)],
    }
    optional = {
        "received_at": received,
        "reporter_name": field(form, "reporter_name"),
        "reporter_phone": field(form, "reporter_phone"),
        "accused_level": field(form, "accused_level"),
    }
    data.update({k: v for k, v in optional.items() if v})
    return data


@router.post("/intake")
async def register(
    request: Request,
    ctx: ReadingCtx,
    form: ReadingCsrfForm,
    store: StoreDep,
) -> Response:
    """The case in a writer session of its own, after its evidence files were
    checked and stored holding nothing (app/console/evidence.py); a replayed
    form takes back what its files wrote, as ``POST /media`` does."""
    tz = ZoneInfo(ctx.settings.timezone)
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    values["priority_flags"] = form.getlist("priority_flags")
    form_id = field(form, "form_id")
    if not _FORM_ID.fullmatch(form_id):
        form_id = ""
        values.pop("form_id", None)

    async def again(error: str, status_code: int) -> Response:
        async with db.read_session(request) as reader:
            return await _form_page(
                request, ctx, reader, values=values, error=error, status_code=status_code
            )

    data = _payload(form, tz)
    try:
        body = OfflineIntake.model_validate(data)
    except ValidationError as exc:
        return await again(error_text(exc), 422)
    staged: list[Staged] = []
    try:
        staged = await evidence.stage_files(store, ctx, form.getlist("evidence"))
        async with db.write_session(request) as session:
            record: idempotency.Replay | IdempotencyRecord | None = None
            if form_id:
                record = await idempotency.begin(
                    session,
                    scope="console-intake",
                    owner=f"staff:{ctx.user.id}",
                    key=form_id,
                    fingerprint=idempotency.request_hash(data),
                    now=ctx.now,
                )
            if not isinstance(record, idempotency.Replay):
                done, case = await _register(session, ctx, staged, body, record)
        if isinstance(record, idempotency.Replay):
            # Its files go once the session is over: deleting them is storage
            # work, and on SQLite the session held every writer's lock.
            await evidence.discard(staged)
            return redirect(
                request,
                f"/console/complaints/{record.body['id']}/receipt",
                flash=("warn", "这份登记已经提交过，未重复登记"),
            )
    except AppError as exc:
        await evidence.discard(staged)
        values.pop("form_id", None)  # a fresh id: the corrected form is a new request
        return await again(exc.detail, exc.status_code)
    except BaseException:
        await evidence.discard(staged)
        raise
    return _receipt(request, ctx, case, query_code=done.query_code, status_code=201)


async def _register(
    session: AsyncSession,
    ctx: ConsoleContext,
    staged: list[Staged],
    body: OfflineIntake,
    record: IdempotencyRecord | None,
) -> tuple[intake.Registered, CaseFile]:
    """The intake's writes: its files' rows, the case, the answer kept for the
    form's id, and the case as the receipt shows it."""
    uploaded = await evidence.record_files(session, ctx, staged)
    if uploaded:
        body = body.model_copy(update={"media_ids": [m.id for m in uploaded]})
    # The query code is shown on this receipt and nowhere else (a replay of
    # the form shows the receipt without it).
    done = await intake.register(session, ctx.user, body, now=ctx.now, settings=ctx.settings)
    if record is not None:
        await idempotency.complete(session, record, status_code=201, body={"id": done.complaint_id})
    case = await workflow_queue.case_file(
        session, ctx.user, done.complaint_id, now=ctx.now, settings=ctx.settings, scoped=False
    )
    return done, case


def _receipt(
    request: Request,
    ctx: ConsoleContext,
    case: CaseFile,
    *,
    query_code: str | None,
    status_code: int = 200,
) -> Response:
    url = urls.tracking_page(ctx.settings, case.tracking_no)
    return render(
        request,
        "receipt.html",
        ctx=ctx,
        status_code=status_code,
        case=case,
        query_code=query_code,
        tracking_url=url,
        tracking_qr=qr_svg(url),
        fresh=status_code == 201,
        channel_labels=lookups.CHANNEL_LABELS,
    )


@router.get("/complaints/{complaint_id}/receipt")
async def receipt(
    request: Request,
    complaint_id: Annotated[str, Path(min_length=1, max_length=64)],
    ctx: Ctx,
    session: SessionDep,
) -> Response:
    """Reprint (scoped like the case page; the query code is not shown again).
    A writer: the case file records a read of an accuser's identity."""
    case = await workflow_queue.case_file(
        session, ctx.user, complaint_id, now=ctx.now, settings=ctx.settings
    )
    return _receipt(request, ctx, case, query_code=None)
