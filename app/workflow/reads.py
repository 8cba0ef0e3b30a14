"""Route-side: the identity reads a reading request made, recorded apart.

A search by the filer's phone only reads, from a read session (or a
replica), so on SQLite it takes no write lock while it looks. The protected
cases it found are a read of their filers' identity all the same, and the
record of that read must exist before anything is answered: it is written
here, in a writer session of its own, and if it cannot be written the request
fails (and a file made for it is deleted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fastapi import Request

from app.core import db
from app.models import Complaint, StaffUser
from app.workflow import queue


async def record(
    request: Request,
    user: StaffUser,
    found: Sequence[Complaint],
    *,
    now: datetime,
    made: Path | None = None,
) -> None:
    """Record ``found`` (``QueueResult.identity_reads``) and commit; nothing
    to do, and no session taken, when the search found no protected case."""
    if not found:
        return
    try:
        async with db.write_session(request) as session:
            await queue.record_identity_reads(session, user, found, now=now)
    except BaseException:
        if made is not None:
            await asyncio.to_thread(made.unlink, missing_ok=True)
        raise
