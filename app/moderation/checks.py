"""Check rows and verdicts, without any feature import: the media and
complaint services call these to hold a resident's content for WeChat's
content security while the request writes it (app/moderation/service.py and
worker.py do the rest).

The resident's openid rides along sealed (WeChat judges content *for* a user
who opened the mini-program in the last two hours) and bound to the target,
so a copied sealed value opens nowhere else; it is erased once judged.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import crypto, keys
from app.core.config import Settings
from app.models import Citizen, ContentCheck, Media
from app.models.enums import MediaKind
from app.models.moderation import CheckState, Verdict

PREPARE = "prepare"  # voice / video: the worker makes the parts WeChat can read


def _aad(target: str) -> str:
    return f"content-check:{target}"


def seal_openid(target: str, openid: str) -> str:
    return crypto.seal(keys.current(), openid.encode(), aad=_aad(target))


def unseal_openid(check: ContentCheck) -> str | None:
    if not check.openid_sealed:
        return None
    return crypto.unseal(keys.current(), check.openid_sealed, aad=_aad(check.target)).decode()


def new_check(
    *,
    target: str,
    kind: str,
    part: str,
    now: datetime,
    openid_sealed: str | None,
    complaint_id: str | None = None,
    object_key: str | None = None,
    verdict: Verdict = Verdict.checking,
    label: int | None = None,
) -> ContentCheck:
    decided = verdict is not Verdict.checking
    return ContentCheck(
        id=uuid.uuid4().hex,
        target=target,
        complaint_id=complaint_id,
        kind=kind,
        part=part,
        object_key=object_key,
        openid_sealed=None if decided else openid_sealed,
        state=CheckState.done if decided else CheckState.due,
        verdict=verdict.value,
        label=label,
        attempts=0,
        next_at=None if decided else now,
        decided_at=now if decided else None,
        created_at=now,
    )


async def hold_media(
    session: AsyncSession,
    settings: Settings,
    media: Media,
    *,
    citizen_id: int | None,
    now: datetime,
) -> None:
    """A resident's upload waits in ``checking`` until WeChat has judged every
    part of it; staff uploads (evidence, disclosures) are not user content."""
    if citizen_id is None or not settings.content_security:
        return
    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        return
    target = f"media:{media.id}"
    media.moderation = Verdict.checking.value
    image = media.kind is MediaKind.image
    session.add(
        new_check(
            target=target,
            kind="image" if image else PREPARE,
            part="image" if image else PREPARE,
            object_key=media.storage_key if image else None,
            openid_sealed=seal_openid(target, citizen.openid),
            now=now,
        )
    )
    await session.flush()


def staff_may_see(media: Media) -> bool:
    """Staff lists, the case file and the dossier show media only once WeChat
    passed it (or flagged it for their review); unchecked rows (NULL) predate
    content security or are staff uploads."""
    return media.moderation in (None, Verdict.pass_.value, Verdict.review.value)


async def forget_media(session: AsyncSession, media_ids: list[str]) -> None:
    """Drop the checks of media rows being deleted (``ydt media cleanup``)."""
    if media_ids:
        await session.execute(
            delete(ContentCheck).where(ContentCheck.target.in_([f"media:{m}" for m in media_ids]))
        )
