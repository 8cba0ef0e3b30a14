"""WeChat content security for what residents write and upload (issue 12, item 22).

Text (filing content, supplements, rating comments) is judged synchronously
by msgSecCheck v2 before anything is written:
- ``risky`` is a 422 in Chinese and nothing is written;
- ``review`` is accepted and the case is flagged (``complaints.moderation``)
  for staff, who read it with care; nothing of a case's text is public;
- WeChat unreachable (or slow past ``YDT_CONTENT_CHECK_TIMEOUT_SECONDS``):
  the filing is accepted and routed, so its deadline runs and the unit sees
  it; the case is flagged ``checking`` and ``ydt worker`` retries the check.
  A verdict the worker gets later can no longer refuse the text, so a
  ``risky`` one flags the case for staff instead.

Media waits in ``checking`` (app/moderation/checks.py) until every part
WeChat judged is in; see app/moderation/worker.py and router.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import AppError, BadGateway, ServiceUnavailable
from app.models import Citizen, Complaint, ContentCheck, Media
from app.models.moderation import CheckState, Verdict, worst
from app.moderation import checks
from app.wechat import client as wechat

logger = logging.getLogger(__name__)

RESIDENT_NOTES = {
    Verdict.checking.value: "正在进行内容安全检测，通过后工作人员可见",
    Verdict.review.value: "内容安全检测提示需人工复核，已提交工作人员审慎处理",
    Verdict.risky.value: "未通过内容安全检测，该文件不会提交给工作人员，请更换后重新上传",
}


class ContentRisky(AppError):
    """WeChat found the text risky: refused before anything is written."""

    status_code, code = 422, "content_risky"


@dataclass(frozen=True, slots=True)
class TextCheck:
    """WeChat's answer on one text, before the text is written."""

    verdict: Verdict
    label: int | None
    openid: str


class ContentGate:
    """The synchronous text check, handed to the services that write resident text."""

    def __init__(self, settings: Settings, client: wechat.WeChatClient) -> None:
        self._settings = settings
        self._client = client

    async def check(
        self, text: str | None, *, openid: str, scene: int, what: str, now: datetime
    ) -> TextCheck | None:
        """None when there is nothing to check (no text, or content security off)."""
        if not text or not text.strip() or not self._settings.content_security:
            return None
        try:
            found = await wechat.msg_sec_check(
                self._client,
                openid=openid,
                content=text,
                scene=scene,
                now=now,
                wait_seconds=self._settings.content_check_timeout_seconds,
            )
        except wechat.ContentCheckRefused:
            # WeChat will not judge for this openid: accepted, staff look.
            return TextCheck(Verdict.review, None, openid)
        except (ServiceUnavailable, BadGateway, wechat.WeChatNotConfigured):
            logger.warning("text check deferred: WeChat unreachable", extra={"what": what})
            return TextCheck(Verdict.checking, None, openid)
        verdict = Verdict(found.suggest)
        if verdict is Verdict.risky:
            logger.info("text refused by content security", extra={"label": found.label})
            raise ContentRisky(
                f"{what}含有违法违规或不宜发布的内容，未能提交。请删改相关表述后重新提交。"
            )
        return TextCheck(verdict, found.label, openid)


async def check_text(
    gate: ContentGate | None,
    text: str | None,
    *,
    citizen: Citizen,
    scene: int,
    what: str,
    now: datetime,
) -> TextCheck | None:
    """The services' one call: no gate (a caller outside a request) checks nothing."""
    if gate is None or not text:
        return None
    return await gate.check(text, openid=citizen.openid, scene=scene, what=what, now=now)


def record_text(
    session: AsyncSession,
    check: TextCheck | None,
    *,
    target: str,
    complaint: Complaint,
    now: datetime,
) -> None:
    """Keep the verdict beside what was written, and flag the case."""
    row = text_check_row(check, target=target, complaint=complaint, now=now)
    if row is not None:
        session.add(row)


def text_check_row(
    check: TextCheck | None, *, target: str, complaint: Complaint, now: datetime
) -> ContentCheck | None:
    """Flag the case with the verdict; the row to keep beside the text, if any.

    A passed text leaves only the flag ``pass``; a text to review, or one
    still to check (its openid sealed for the worker's retry), gets a row.
    A writer that inserts rows itself (app/complaints/filing_sql.py) takes it.
    """
    if check is None:
        return None
    complaint.moderation = worst(
        [Verdict(complaint.moderation or Verdict.pass_.value), check.verdict]
    ).value
    if check.verdict is Verdict.pass_:
        return None
    return checks.new_check(
        target=target,
        kind="text",
        part="text",
        complaint_id=complaint.id,
        verdict=check.verdict,
        label=check.label,
        openid_sealed=checks.seal_openid(target, check.openid)
        if check.verdict is Verdict.checking
        else None,
        now=now,
    )


async def refresh_complaint(session: AsyncSession, complaint_id: str) -> None:
    """The case's flag: the worst verdict over its texts (checking while any is due)."""
    rows = (
        await session.execute(
            select(ContentCheck.state, ContentCheck.verdict).where(
                ContentCheck.complaint_id == complaint_id, ContentCheck.kind == "text"
            )
        )
    ).all()
    verdicts = [Verdict(v) if state == CheckState.done else Verdict.checking for state, v in rows]
    complaint = await session.get(Complaint, complaint_id)
    if complaint is not None:
        complaint.moderation = worst([Verdict.pass_, *verdicts]).value


def combine(parts: list[ContentCheck]) -> Verdict:
    """A media's verdict from its parts: risky as soon as one part is, otherwise
    checking until every part is in, then the worst of them."""
    done = [Verdict(p.verdict) for p in parts if p.state == CheckState.done]
    if Verdict.risky in done:
        return Verdict.risky
    if len(done) < len(parts):
        return Verdict.checking
    return worst(done)


async def refresh_media(session: AsyncSession, media_id: str) -> Verdict | None:
    media = await session.get(Media, media_id)
    if media is None:
        return None
    parts = list(
        (
            await session.execute(
                select(ContentCheck).where(ContentCheck.target == f"media:{media_id}")
            )
        ).scalars()
    )
    if not parts:
        return None
    verdict = combine(parts)
    labels = [p.label for p in parts if p.verdict == verdict.value and p.label is not None]
    if media.moderation != verdict.value:
        logger.info(
            "media content security verdict",
            extra={"media_id": media_id, "verdict": verdict.value},
        )
    media.moderation = verdict.value
    media.moderation_label = labels[0] if labels else None
    return verdict


def decide(check: ContentCheck, verdict: Verdict, label: int | None, now: datetime) -> None:
    check.state = CheckState.done
    check.verdict = verdict.value
    check.label = label
    check.decided_at = now
    check.next_at = None
    check.openid_sealed = None  # judged: WeChat needs the openid no more


async def apply_push(
    session: AsyncSession,
    *,
    trace_id: str,
    suggest: str | None,
    label: int | None,
    errcode: int,
    now: datetime,
) -> str:
    """WeChat's pushed verdict for one submitted part (wxa_media_check).

    Idempotent: a replayed push, or one for a part already decided, changes
    nothing; an unknown trace id is logged and ignored. Returns what happened.
    """
    check = (
        await session.execute(select(ContentCheck).where(ContentCheck.trace_id == trace_id))
    ).scalar_one_or_none()
    if check is None:
        logger.warning("content check push for an unknown trace id")
        return "unknown"
    if check.state != CheckState.submitted:
        return "already"
    if errcode != 0 or suggest not in ("pass", "review", "risky"):
        # WeChat could not judge it (e.g. the link failed): submit it again.
        check.state, check.next_at, check.trace_id = CheckState.due, now, None
        return "retry"
    decide(check, Verdict(suggest), label, now)
    await session.flush()
    if check.target.startswith("media:"):
        await refresh_media(session, check.target.removeprefix("media:"))
    await session.flush()
    return "decided"


def resident_note(media: Media) -> str | None:
    return RESIDENT_NOTES.get(media.moderation or "")
