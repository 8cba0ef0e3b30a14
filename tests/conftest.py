"""Fixtures that talk to real things.

* ``engine`` is parametrised over SQLite and PostgreSQL; each schema is built
  by ``alembic upgrade head`` and seeded once per run. Without a PostgreSQL
  server the PostgreSQL half is skipped locally and fails under ``CI=true``.
* ``session`` wraps each test in a transaction that is rolled back; the app's
  own commits become SAVEPOINT releases inside it.
* ``s3`` is a moto S3 server on a free loopback port, driven by the minio SDK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.requests import Request as StarletteRequest

from app.core import keys
from app.core.clock import FixedClock
from app.core.config import Settings
from app.core.db import create_engine, get_filing_session, get_session
from app.core.shared import DatabaseSharedStore
from app.core.storage.local import LocalMediaStore
from app.core.storage.s3 import S3MediaStore
from app.main import create_app
from app.models import StatsPending
from app.reference import service as reference_service
from app.stats import projector
from app.wechat.client import WeChatClient
from tests import support
from tests.fake_wechat import FakeWeChat

TEST_SECRET = "test-secret-0123456789-abcdefghij"
# Identity and chain keys (app/core/keys.py): fixed, so every app and every
# direct use of the chain in a run agree.
TEST_KEYS = {
    "identity_keys": "ktest:test-kek-0123456789-abcdefghijklmnopqrstuv",
    "chain_key": "test-chain-0123456789-abcdefghijklmnopqrstuv",
    "index_key": "test-index-0123456789-abcdefghijklmnopqrstuv",
}
TEST_AUDIT_KEY = "5e" * 32  # Ed25519 seed (hex) signing audit checkpoints
# A Tuesday morning in Dazhou; tests move the clock explicitly.
DEFAULT_NOW = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "_env_file": None,
        "env": "test",
        "jwt_secret": TEST_SECRET,
        **TEST_KEYS,
        # Audit checkpoints (app/audit/): a fixed signing key; the worker's
        # periodic ones off, so ticks in shared committed data leave none behind.
        "audit_signing_key": TEST_AUDIT_KEY,
        "checkpoint_minutes": 0,
        # WeChat content security holds residents' media in "checking" until a
        # pushed verdict: off here, on in tests/moderation/ (which turn it on).
        "content_security_enabled": False,
        "log_json": True,
        "log_level": "WARNING",
        # Each test's changes live in a transaction that is rolled back: check
        # the reference token on every use, as a process does once per second.
        "reference_cache_seconds": 0,
        # Tests drain the statistics projector themselves (tests/support.py).
        "projector_in_app": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Production-cost argon2 (64 MiB, 3 passes) per login would dominate the
    suite's time; the same library with light parameters keeps tests honest."""
    from argon2 import PasswordHasher

    from app.core import security

    original = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    security._hasher = original


@pytest.fixture(scope="session", autouse=True)
def _test_keys() -> None:
    """Chain entries built outside an app use the same keys as the apps."""
    keys.install(keys.Keyring.from_settings(make_settings()))


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ydt")


@pytest.fixture(scope="session")
def s3(tmp_root: Path) -> Iterator[support.S3Server]:
    server = support.start_moto(tmp_root)
    yield server
    server.stop()


def make_s3_store(server: support.S3Server, bucket: str = "ydt-test") -> S3MediaStore:
    return S3MediaStore(
        endpoint=server.endpoint,
        access_key="testing",
        secret_key="testing",
        bucket=bucket,
        secure=False,
        region="us-east-1",
        part_size=5 * 1024 * 1024,
    )


@pytest.fixture(scope="session")
async def _sqlite_engine(tmp_root: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_root / 'test.db'}"
    await asyncio.to_thread(support.alembic_upgrade, url)
    engine = create_engine(make_settings(database_url=url), url=url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def _pg_engine() -> AsyncIterator[AsyncEngine | None]:
    if not await support.postgres_available():
        if support.IN_CI:
            pytest.fail("PostgreSQL is mandatory under CI but is not reachable on 127.0.0.1:5432")
        yield None
        return
    name, url = await support.create_pg_database()
    await asyncio.to_thread(support.alembic_upgrade, url)
    engine = create_engine(make_settings(database_url=url), url=url)
    yield engine
    await engine.dispose()
    await support.drop_pg_database(name)


_seeded: set[int] = set()


@pytest.fixture(params=["sqlite", "postgresql"], scope="session")
async def engine(
    request: pytest.FixtureRequest,
    _sqlite_engine: AsyncEngine,
    _pg_engine: AsyncEngine | None,
) -> AsyncEngine:
    if request.param == "sqlite":
        return _sqlite_engine
    if _pg_engine is None:
        pytest.skip("PostgreSQL not reachable (mandatory under CI=true)")
    return _pg_engine


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncEngine:
    """The shipped reference data, loaded once per database and kept."""
    if id(engine) not in _seeded:
        async with engine.connect() as conn:
            session = AsyncSession(bind=conn, expire_on_commit=False)
            await reference_service.seed(session, now=DEFAULT_NOW)
            await session.commit()
            await conn.commit()
        _seeded.add(id(engine))
    return engine


_committing: dict[int, AsyncEngine] = {}


@pytest.fixture(scope="session")
async def _committing_registry(tmp_root: Path) -> AsyncIterator[dict[int, AsyncEngine]]:
    yield _committing
    for e in _committing.values():
        name = e.url.database if e.dialect.name == "postgresql" else None
        await e.dispose()
        if name:
            await support.drop_pg_database(name)


@pytest.fixture
async def committing_engine(
    engine: AsyncEngine, tmp_root: Path, _committing_registry: dict[int, AsyncEngine]
) -> AsyncEngine:
    """A second database of the engine's kind, migrated and seeded, for tests whose
    requests really commit (races, live servers, two workers). What they leave
    behind must never show up in the counts of the rolled-back tests that share
    ``engine``: a committed case in the shared database broke the statistics
    invariants and the key-rotation tally whenever the suites ran in one order."""
    key = id(engine)
    if key not in _committing_registry:
        if engine.dialect.name == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_root / 'committing.db'}"
        else:
            _, url = await support.create_pg_database()
        await asyncio.to_thread(support.alembic_upgrade, url)
        other = create_engine(make_settings(database_url=url), url=url)
        async with other.connect() as conn:
            session = AsyncSession(bind=conn, expire_on_commit=False)
            await reference_service.seed(session, now=DEFAULT_NOW)
            await session.commit()
            await conn.commit()
        _committing_registry[key] = other
    return _committing_registry[key]


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            yield conn
        finally:
            if trans.is_active:
                await trans.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    s = AsyncSession(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(scope="session")
def wechat_server() -> Iterator[FakeWeChat]:
    server = FakeWeChat().start()
    yield server
    server.stop()


@pytest.fixture
def wechat(wechat_server: FakeWeChat) -> FakeWeChat:
    wechat_server.requests.clear()
    wechat_server.subscribe_failures = 0
    wechat_server.link_mode = "ok"
    wechat_server.content_down = False
    wechat_server.on_text_check = None
    wechat_server.on_login = None
    wechat_server.media_verdicts.clear()
    wechat_server.media_checks.clear()
    wechat_server.pending_pushes.clear()
    wechat_server.push_url = None
    wechat_server.fetch_media = False
    return wechat_server


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(DEFAULT_NOW)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalMediaStore:
    return LocalMediaStore(
        tmp_path / "media", secret=TEST_SECRET, public_base_url="http://testserver"
    )


@pytest.fixture
async def app(
    engine: AsyncEngine,
    connection: AsyncConnection,
    clock: FixedClock,
    local_store: LocalMediaStore,
    wechat: FakeWeChat,
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        wechat_api_base=wechat.url,
        wechat_appid="wx-test-app",
        wechat_secret="wx-test-secret",
        wechat_timeout_seconds=1.5,
        dev_login_enabled=True,
    )
    application = create_app(
        settings, clock=clock, engine=engine, media_store=local_store, configure_logs=False
    )

    # Takes the request, as the filing's hot lane hands it one (app.core.db.filing_session).
    async def _session(request: StarletteRequest) -> AsyncIterator[AsyncSession]:
        s = AsyncSession(
            bind=connection,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint",
        )
        try:
            yield s
            await s.commit()
        except BaseException:
            await s.rollback()
            raise
        finally:
            await s.close()

    application.dependency_overrides[get_session] = _session
    application.dependency_overrides[get_filing_session] = _session
    # Health checks and the one-dependency reads (app.core.db.read_session)
    # open their own sessions: point them at the test connection too.
    application.state.sessionmaker = lambda: AsyncSession(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    # A read session takes no savepoint: in production it is a connection of
    # its own, so a write a reading request makes apart (app/workflow/reads.py)
    # must not be undone when the read session closes after it. It cannot
    # write (app.core.db refuses it) and is never rolled back, only closed.
    application.state.read_sessionmaker = lambda: AsyncSession(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="rollback_only",
    )
    application.state.shared_store = DatabaseSharedStore(application.state.sessionmaker)
    await application.state.wechat.aclose()
    application.state.wechat = WeChatClient(settings, application.state.shared_store)
    await local_store.start()
    yield application
    await application.state.wechat.aclose()


async def drain_projector(app: FastAPI) -> int:
    """Apply every queued event to the rollups, as the running projector would
    within a second (app/stats/projector.py), on the test's connection."""
    async with app.state.sessionmaker() as s:
        # One cheap read when nothing is queued (most requests of most tests).
        if (await s.execute(select(StatsPending.event_id).limit(1))).first() is None:
            return 0
        n = await projector.drain(s, now=app.state.clock.now())
        await s.commit()
    return n


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async def _projected(request: Request) -> None:
        # Statistics trail the event log by design (about a second); a test
        # reads every page after the projector caught up, as a person would a
        # second later: the API's statistics, the console's dashboard and
        # ledger, the resident site's figures. Not before the resident's own
        # reads of a case, whose statements some tests count, nor the health
        # checks, which report the projector's lag.
        path = request.url.path
        if not path.startswith(("/api/v1/complaints", "/api/v1/track", "/healthz", "/readyz")):
            await drain_projector(app)

    async with AsyncClient(
        transport=ASGITransport(app=app),
        base_url="http://testserver",
        event_hooks={"request": [_projected]},
    ) as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that drove a live server (tests/console/live.py) shows
    the end of that server's output: which request was slow, which failed."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        live = getattr(value, "live", value)
        tail = getattr(live, "log_tail", None)
        if callable(tail):
            report.sections.append(("live server output (end)", tail()))
            return
