"""Staff sign-in: one answer for every failure, throttling that slows guessing
without letting a stranger lock a cadre out, and an audit of every attempt.

Design (issue 12, item 15):

* **One answer.** Unknown username, wrong password, disabled account and
  throttled attempt all get the same 401 and body (``LoginFailed``), and all
  verify a password hash (a dummy one when there is no account), so neither
  the answer nor its timing tells which usernames exist, whether a guess was
  right while throttled, or whether an account is disabled.
* **Throttling, counted in the shared store** (all workers together; Redis or
  the database) over fixed windows of ``YDT_LOGIN_WINDOW_SECONDS``, on
  failures only:

  - per (username, IP): ``YDT_LOGIN_MAX_FAILURES_PER_PAIR`` failures block
    that pair. Only the guesser's own pair is blocked.
  - per username, from any IP: ``YDT_LOGIN_MAX_FAILURES_PER_USER`` failures
    block the username for IPs it has never signed in from (guessing spread
    over many addresses).
  - per IP, over all usernames: ``YDT_LOGIN_MAX_FAILURES_PER_IP`` failures
    block that IP for every account that has never signed in from it
    (password spraying).

  A correct password from an IP the account signed in from within
  ``YDT_LOGIN_KNOWN_IP_DAYS`` passes the per-username and per-IP blocks, so a
  stranger hammering a cadre's name from elsewhere cannot lock the cadre out
  of their office; only the (username, IP) pair the stranger uses is blocked.
  A block lasts one window and is renewed by every failure during it.
* **A flood cap.** After ``YDT_LOGIN_MAX_FAILURES_PER_IP_MINUTE`` failures
  from one IP within a minute, its attempts get the same 401 for a minute
  without hashing anything: argon2 costs about 0.2 s of CPU, and a flood must
  not buy that per request. It says nothing about accounts, and successful
  sign-ins (a whole office arriving at 8:30) never count.
* **Audit.** Every attempt is a row in ``staff_login_attempts`` (account,
  IP, outcome; the typed username only when it names an account, since
  people type passwords into the username field) and a log line
  (``app.staff.login``). An admin reads them at
  ``GET /staff/users/{id}/login-attempts``.

Counter keys hold a digest of the username, never the typed text. IPv6
addresses are counted per /64 (one subscriber's block).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.ratelimit import ip_bucket
from app.core.security import hash_password, password_needs_rehash, verify_password_or_dummy
from app.core.shared import SharedStore
from app.models import LoginOutcome, StaffLoginAttempt, StaffUser
from app.staff import repository
from app.staff.schemas import USERNAME_RE

logger = logging.getLogger("app.staff.login")

FAILED_DETAIL = "用户名或密码错误，或尝试次数过多，请稍后再试"


class LoginFailed(Unauthorized):
    """The one answer to every failed staff login, whatever the cause."""

    def __init__(self) -> None:
        super().__init__(FAILED_DETAIL)


def _name_key(username: str) -> str:
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _Keys:
    def __init__(self, username: str, ip: str) -> None:
        name, bucket = _name_key(username), ip_bucket(ip)
        self.flood = f"login:fail:ipmin:{bucket}"
        self.pair = f"login:fail:pair:{name}:{bucket}"
        self.user = f"login:fail:user:{name}"
        self.ip = f"login:fail:ip:{bucket}"


def _block(key: str) -> str:
    return f"{key}:blocked"


async def authenticate(
    db: AsyncSession,
    shared: SharedStore,
    settings: Settings,
    *,
    username: str,
    password: str,
    ip: str,
    now: datetime,
) -> StaffUser:
    """The staff member whose password this is, or ``LoginFailed``.

    Every attempt is audited in ``db`` (flushed, not committed): the caller
    must let its transaction commit on ``LoginFailed`` too (catch it and
    render the answer; do not let it propagate), or the audit row is lost.
    The throttle counters live in the shared store and count regardless.
    """
    name = username.strip().lower()
    keys = _Keys(name, ip)
    flooded = await shared.get(_block(keys.flood), now=now) is not None

    # A name no account can have is not looked up (nor sent to the database).
    user = await repository.get_by_username(db, name) if USERNAME_RE.fullmatch(name) else None
    pair_blocked = await shared.get(_block(keys.pair), now=now) is not None
    wide_blocked = (
        await shared.get(_block(keys.user), now=now) is not None
        or await shared.get(_block(keys.ip), now=now) is not None
    )
    correct = False
    if not flooded:
        # argon2 is ~0.2 s of CPU by design: off the event loop.
        correct = await asyncio.to_thread(
            verify_password_or_dummy, user.password_hash if user else None, password
        )
    throttled = flooded or pair_blocked
    if wide_blocked and not throttled:
        throttled = not (
            correct
            and user is not None
            and await repository.signed_in_from(
                db, user.id, ip, since=now - timedelta(days=settings.login_known_ip_days)
            )
        )

    if user is None:
        outcome = LoginOutcome.unknown_user
    elif throttled:
        outcome = LoginOutcome.throttled
    elif not correct:
        outcome = LoginOutcome.bad_password
    elif not user.active:
        outcome = LoginOutcome.disabled
    else:
        outcome = LoginOutcome.success
    # A flood's attempts test no password: logged, but not a row each.
    await _audit(db, user, ip, outcome, now=now, row=not flooded)

    if outcome is not LoginOutcome.success or user is None:
        if not flooded:  # a flood's attempts are not counted: its block just lasts
            await _count_failure(shared, settings, keys, now=now)
        raise LoginFailed()
    if password_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
        await db.flush()
    return user


async def _count_failure(
    shared: SharedStore, settings: Settings, keys: _Keys, *, now: datetime
) -> None:
    window = settings.login_window_seconds
    limits = (
        (keys.flood, settings.login_max_failures_per_ip_minute, 60),
        (keys.pair, settings.login_max_failures_per_pair, window),
        (keys.user, settings.login_max_failures_per_user, window),
        (keys.ip, settings.login_max_failures_per_ip, window),
    )
    for key, limit, seconds in limits:
        count, _ = await shared.hit(key, window_seconds=seconds, now=now)
        if count >= limit:
            await shared.set(_block(key), "1", ttl_seconds=seconds, now=now)


async def _audit(
    db: AsyncSession,
    user: StaffUser | None,
    ip: str,
    outcome: LoginOutcome,
    *,
    now: datetime,
    row: bool,
) -> None:
    if row:
        db.add(
            StaffLoginAttempt(
                at=now, staff_id=user.id if user else None, ip=ip[:45], outcome=outcome
            )
        )
        await db.flush()
    extra = {
        "event": "staff_login",
        "outcome": outcome.value,
        "staff_id": user.id if user else None,
        "ip": ip,
        "flood": not row,
    }
    if outcome is LoginOutcome.success:
        logger.info("staff login", extra=extra)
    else:
        logger.warning("staff login failed", extra=extra)


# Attempts are kept at least this long (and as long as an IP counts as known).
AUDIT_RETENTION = timedelta(days=180)


async def purge(db: AsyncSession, settings: Settings, *, now: datetime) -> int:
    """Delete audit rows older than the retention (the worker calls this)."""
    keep = max(AUDIT_RETENTION, timedelta(days=settings.login_known_ip_days))
    return await repository.delete_attempts_before(db, now - keep)
