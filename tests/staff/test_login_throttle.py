"""Guessing is slowed per (username, IP), per username and per IP, and a
stranger cannot lock a cadre out: a correct password from an address the
account signed in from before passes the per-username and per-IP limits."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core import security
from app.core.clock import FixedClock
from app.models import SharedState, StaffLoginAttempt
from app.models.enums import StaffRole
from tests.factories import PASSWORD, make_staff
from tests.staff.helpers import FAILED, attempt, bearer, trust_local_proxy

pytestmark = pytest.mark.usefixtures("seeded")

OFFICE = "198.51.100.10"  # where the cadre signs in every day
STRANGER = "203.0.113.66"


@pytest.fixture
async def cadre(app: FastAPI, client: AsyncClient, connection: AsyncConnection) -> int:
    trust_local_proxy(app)
    user = await make_staff(connection, "fb.cadre", StaffRole.supervisor, unit_code="XZ-511702005")
    bearer(await attempt(client, "fb.cadre", ip=OFFICE))  # the office is now a known address
    return user.id


async def test_a_guessed_pair_is_throttled_but_the_owner_elsewhere_gets_in(
    client: AsyncClient, cadre: int
) -> None:
    for i in range(5):
        assert (await attempt(client, "fb.cadre", f"guess-{i}", ip=STRANGER)).json() == FAILED
    # The right password from the guesser's address is refused like a wrong one ...
    refused = await attempt(client, "fb.cadre", ip=STRANGER)
    assert refused.status_code == 401 and refused.json() == FAILED
    # ... while the owner, at the office or anywhere new, still signs in.
    bearer(await attempt(client, "fb.cadre", ip=OFFICE))
    bearer(await attempt(client, "fb.cadre", ip="192.0.2.200"))


async def test_guessing_from_many_addresses_throttles_new_addresses_only(
    client: AsyncClient, cadre: int
) -> None:
    for i in range(20):  # one guess each from twenty addresses
        r = await attempt(client, "fb.cadre", f"guess-{i}", ip=f"203.0.113.{i + 1}")
        assert r.status_code == 401
    assert (await attempt(client, "fb.cadre", ip="192.0.2.201")).json() == FAILED
    bearer(await attempt(client, "fb.cadre", ip=OFFICE))


async def test_spraying_from_one_address_throttles_accounts_never_seen_there(
    client: AsyncClient, connection: AsyncConnection, cadre: int, clock: FixedClock
) -> None:
    await make_staff(connection, "fb.other", StaffRole.supervisor, unit_code="XZ-511702005")
    for i in range(30):  # thirty usernames, one guess each, from the office
        if i % 15 == 0:
            clock.advance(timedelta(seconds=61))  # under the flood cap: a patient sprayer
        await attempt(client, f"user{i:02d}", "Password1", ip=OFFICE)
    # The cadre signed in from the office before: still passes.
    bearer(await attempt(client, "fb.cadre", ip=OFFICE))
    # An account never seen there is throttled there, and fine elsewhere.
    assert (await attempt(client, "fb.other", ip=OFFICE)).json() == FAILED
    bearer(await attempt(client, "fb.other", ip="192.0.2.202"))


async def test_blocks_end_with_the_window(
    client: AsyncClient, cadre: int, clock: FixedClock
) -> None:
    for i in range(5):
        await attempt(client, "fb.cadre", f"guess-{i}", ip=STRANGER)
    assert (await attempt(client, "fb.cadre", ip=STRANGER)).json() == FAILED
    clock.advance(timedelta(seconds=901))
    bearer(await attempt(client, "fb.cadre", ip=STRANGER))


async def test_rotating_forwarded_for_does_not_help_without_a_trusted_proxy(
    app: FastAPI, client: AsyncClient, connection: AsyncConnection
) -> None:
    """By default X-Forwarded-For is not believed: 127.0.0.1 is one client."""
    await make_staff(connection, "fb.rot", StaffRole.supervisor, unit_code="XZ-511702005")
    assert not app.state.settings.trusted_proxies
    for i in range(5):
        await attempt(client, "fb.rot", f"guess-{i}", ip=f"203.0.113.{i + 1}")
    assert (await attempt(client, "fb.rot", ip="203.0.113.99")).json() == FAILED


async def test_a_flood_is_answered_alike_without_hashing(
    client: AsyncClient,
    connection: AsyncConnection,
    cadre: int,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verified: list[int] = []

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            verified.append(1)
            return super().verify(hash, password)

    monkeypatch.setattr(security, "_hasher", Counting(time_cost=1, memory_cost=1024))
    for i in range(30):  # thirty failures from the office within a minute
        await attempt(client, f"ghost{i}", "x", ip=OFFICE)
    assert len(verified) == 30  # unknown usernames cost a (dummy) verification too
    rows = (await connection.execute(select(StaffLoginAttempt.id))).all()
    over = await attempt(client, "fb.cadre", ip=OFFICE)
    assert over.status_code == 401 and over.json() == FAILED
    assert len(verified) == 30  # past the cap nothing is hashed ...
    assert len((await connection.execute(select(StaffLoginAttempt.id))).all()) == len(rows)
    clock.advance(timedelta(seconds=61))  # ... for a minute
    bearer(await attempt(client, "fb.cadre", ip=OFFICE))
    assert len(verified) == 31


async def test_successful_sign_ins_never_count(
    client: AsyncClient, connection: AsyncConnection, cadre: int
) -> None:
    """A whole office signing in at 8:30 from one address is not a flood."""
    for _ in range(40):
        bearer(await attempt(client, "fb.cadre", ip=OFFICE))


async def test_every_attempt_is_audited_without_the_typed_username(
    client: AsyncClient,
    connection: AsyncConnection,
    cadre: int,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="app.staff.login")
    await attempt(client, "fb.cadre", "wrong-one", ip=STRANGER)
    await attempt(client, "my-secret-pw", "x", ip=STRANGER)  # a password typed as username
    seen = (
        await client.get(f"/api/v1/staff/users/{cadre}/login-attempts", headers=admin_headers)
    ).json()
    assert [(a["ip"], a["outcome"]) for a in seen] == [
        (STRANGER, "bad_password"),
        (OFFICE, "success"),
    ]
    failed = (
        await client.get(
            f"/api/v1/staff/users/{cadre}/login-attempts?failed_only=true", headers=admin_headers
        )
    ).json()
    assert [a["outcome"] for a in failed] == ["bad_password"]
    records = [r for r in caplog.records if getattr(r, "event", None) == "staff_login"]
    assert [r.__dict__["outcome"] for r in records][-2:] == ["bad_password", "unknown_user"]
    # Neither the log, the audit table nor the counters hold the typed name.
    assert not any("my-secret-pw" in str(r.__dict__) for r in caplog.records)
    rows = (await connection.execute(select(StaffLoginAttempt.__table__))).all()
    keys = (await connection.execute(select(SharedState.key))).scalars().all()
    assert not any("my-secret-pw" in str(row) for row in rows)
    assert not any("my-secret-pw" in key or "fb.cadre" in key for key in keys)


@pytest.fixture
async def admin_headers(client: AsyncClient, connection: AsyncConnection) -> dict[str, str]:
    await make_staff(connection, "root.audit", StaffRole.admin)
    return bearer(await attempt(client, "root.audit", PASSWORD, ip="192.0.2.1"))
