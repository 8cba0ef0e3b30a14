"""Reads from a streaming replica, with a bounded staleness a cadre never sees.

``YDT_DATABASE_REPLICA_URL`` names a PostgreSQL hot standby fed by streaming
replication. The staff queue, the ledger export and statistics may read from
it (``ReplicaSessionDep``); everything else, and every write, stays on the
primary. Two rules keep what the replica shows honest:

* Read your own writes. After a staff request that changed something
  (a successful POST/PUT/PATCH/DELETE with a staff token), the primary's
  ``pg_current_wal_insert_lsn()`` is stored in the shared store under that
  staff member's id, before the response leaves: the commit happened before
  the response, so that position covers it. (Not ``pg_current_wal_lsn()``,
  the position written so far: with ``synchronous_commit = off`` the commit
  record may still sit in WAL buffers beyond it, and a replica at that
  position would not have the write; found by the multi-instance test.)
  A read by the same staff member goes to the replica only once its
  ``pg_last_wal_replay_lsn()`` has reached that position; until then it goes
  to the primary. The record is shared (Redis),
  so it holds whichever app instance the next request reaches.
* Bounded lag for everyone else. The replica is used only while it is a
  standby that is at most ``YDT_DATABASE_REPLICA_MAX_LAG_SECONDS`` behind;
  when it is further behind, down, or no longer a standby (promoted), reads
  go to the primary. Its state is asked at the start of each replica read,
  in that read's own transaction (one round trip, on the replica).

A failure of the replica, of the check, or of the shared store never turns
a read into an error: the primary answers. Each answer says where it was
read in ``X-Read-From`` (``replica`` or ``primary``), for operators and the
multi-instance test.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import pgbouncer
from app.core.clock import Clock
from app.core.config import Settings
from app.core.db import transaction
from app.core.deps import ReadSessionDep
from app.core.security import TokenService
from app.core.shared import SharedStore

logger = logging.getLogger(__name__)

DOWN_FOR = 5.0  # seconds a replica that failed its check is left alone
CONNECT_TIMEOUT = 2.0  # a replica that does not answer quickly is treated as down
CHECK_TIMEOUT = CONNECT_TIMEOUT + 1.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = b"x-read-from"

INSERT_LSN_SQL = text("SELECT pg_current_wal_insert_lsn()::text")
STATE_SQL = text(
    "SELECT pg_is_in_recovery() AS standby,"
    " pg_last_wal_replay_lsn()::text AS replay,"
    " pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS caught_up,"
    " (SELECT status FROM pg_stat_wal_receiver) AS receiver,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) AS since"
)


def parse_lsn(value: str | None) -> int | None:
    """``'16/B374D848'`` -> an integer that orders like the WAL position."""
    if not value:
        return None
    high, sep, low = value.partition("/")
    if not sep:
        return None
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ReplicaState:
    usable: bool  # a standby
    replay_lsn: int | None
    lag_seconds: float  # math.inf when unknown


def judge(row: Any) -> ReplicaState:
    """What one state row says. Caught up with what it received while its
    WAL receiver streams: no lag, however long ago the last write was.
    Otherwise the age of the last transaction it replayed is the lag (an idle
    primary then looks like lag: reads go to the primary, which is then idle)."""
    if row is None or not row.standby:
        return ReplicaState(False, None, math.inf)
    if row.caught_up and row.receiver == "streaming":
        lag = 0.0
    elif row.since is not None:
        lag = max(0.0, float(row.since))
    else:
        lag = math.inf
    return ReplicaState(True, parse_lsn(row.replay), lag)


def reader_key(request: Request | Scope, tokens: TokenService, clock: Clock) -> str | None:
    """Whose writes a request's reads must see: the staff member of its token."""
    headers = request.headers if isinstance(request, Request) else _headers(request)
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        claims = tokens.decode(token.strip(), now=clock.now())
    except Exception:  # an invalid token: its request fails on its own
        return None
    return f"staff:{claims.subject}" if claims.kind == "staff" else None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}


class Replica:
    """The replica's engine and the staleness rule."""

    def __init__(
        self, settings: Settings, primary: AsyncEngine, shared: SharedStore, clock: Clock
    ) -> None:
        if settings.database_replica_url is None:
            raise ValueError("no YDT_DATABASE_REPLICA_URL")
        self.max_lag = settings.database_replica_max_lag_seconds
        self.ttl = max(60, math.ceil(4 * self.max_lag) + 1)
        self.primary = primary
        self.shared = shared
        self.clock = clock
        self.engine = create_async_engine(
            settings.database_replica_url,
            pool_size=settings.database_pool_size,
            max_overflow=10,
            pool_pre_ping=True,
            connect_args={**pgbouncer.connect_args(settings), "timeout": CONNECT_TIMEOUT},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._down_until = -math.inf  # monotonic time until which the replica is left alone
        self._usable = True  # what the last check said, to log changes once

    async def close(self) -> None:
        await self.engine.dispose()

    async def _needs(self, key: str | None) -> int | None:
        """The WAL position ``key``'s reads must see (raises if the store is down)."""
        if key is None:
            return None
        return parse_lsn(await self.shared.get(f"replica-lsn:{key}", now=self.clock.now()))

    def _note(self, usable: bool, why: str) -> None:
        if usable != self._usable:
            logger.warning(
                "replica usable again" if usable else f"replica not used: {why}",
                extra={"reads": "replica" if usable else "primary"},
            )
        self._usable = usable

    async def open(self, key: str | None) -> AsyncSession | None:
        """A replica session for ``key``'s reads, or None: read the primary.

        The state is asked in the session's own transaction, so the answer is
        about the very connection (behind PgBouncer too: one transaction, one
        server connection) and the snapshot that the reads will use: what it
        has replayed is what they see."""
        if time.monotonic() < self._down_until:
            return None
        try:
            needs = await self._needs(key)
        except Exception as exc:  # cannot tell what this reader wrote: the primary
            logger.warning("replica: shared store unreadable", extra={"error": repr(exc)})
            return None
        session = self.sessionmaker()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                row = (await session.execute(STATE_SQL)).first()
        except Exception as exc:
            await _discard(session)
            self._down_until = time.monotonic() + DOWN_FOR
            self._note(False, f"unreachable ({exc!r})")
            return None
        state = judge(row)
        if not state.usable or state.lag_seconds > self.max_lag:
            await _discard(session)
            self._note(False, "not a standby" if not state.usable else "lagging")
            return None
        self._note(True, "")
        if needs is not None and (state.replay_lsn is None or state.replay_lsn < needs):
            await _discard(session)  # this reader's last write is not there yet
            return None
        return session

    async def record_write(self, key: str) -> None:
        """Remember where the primary's WAL is now: ``key``'s last write is behind it."""
        async with self.primary.connect() as conn:
            lsn = (await conn.execute(INSERT_LSN_SQL)).scalar_one()
            await conn.commit()
        now = self.clock.now()
        await self.shared.set(f"replica-lsn:{key}", str(lsn), ttl_seconds=self.ttl, now=now)


async def _discard(session: AsyncSession) -> None:
    try:
        await session.close()
    except Exception:  # a broken connection: the pool drops it
        logger.debug("replica session close failed", exc_info=True)


class ReadYourWrites:
    """ASGI middleware: records a staff member's write position before the
    response of their write leaves, and labels every answer with where its
    replica-eligible reads were made (``X-Read-From``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        scope.setdefault("state", {})  # request.state: where the dependency leaves its mark
        replica: Replica | None = getattr(state, "replica", None)
        writes = replica is not None and scope["method"] not in SAFE_METHODS

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                read_from = scope.get("state", {}).get("read_from")
                if read_from:
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (HEADER, read_from.encode())]
                if writes and message["status"] < 400 and replica is not None:
                    key = reader_key(scope, state.tokens, state.clock)
                    if key is not None:
                        try:
                            await replica.record_write(key)
                        except Exception as exc:  # committed already: answer anyway
                            logger.error(
                                "replica: write position not recorded",
                                extra={"error": repr(exc), "reader": key},
                            )
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def get_replica_session(
    request: Request, primary: ReadSessionDep
) -> AsyncIterator[AsyncSession]:
    """A session for reads a replica may serve; else the request's read session.

    ``primary`` is the request's read session (``ReadSessionDep``, already
    open for the staff check of the routes that use this, ``ReadingStaff``),
    so falling back costs nothing, and on SQLite takes no write lock."""
    app_state = request.app.state
    replica: Replica | None = getattr(app_state, "replica", None)
    session: AsyncSession | None = None
    if replica is not None:
        session = await replica.open(reader_key(request, app_state.tokens, app_state.clock))
    request.state.read_from = "replica" if session is not None else "primary"
    if session is None:
        yield primary  # committed or rolled back by its own dependency
        return
    async with transaction(session):
        yield session


ReplicaSessionDep = Annotated[AsyncSession, Depends(get_replica_session, scope="function")]
