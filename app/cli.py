"""``ydt``: the one command operators need (migrate, seed, serve, ...)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.core.config import ConfigurationError, get_settings
from app.models.enums import StaffRole

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def cmd_migrate(args: argparse.Namespace) -> int:
    from alembic import command

    cfg = alembic_config()
    if args.revision.startswith("-") or args.downgrade:
        command.downgrade(cfg, args.revision if args.revision != "head" else "base")
    else:
        command.upgrade(cfg, args.revision)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    settings.resolved_jwt_secret()  # refuse early, with the clear message
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from app.openapi import write_openapi

    path = write_openapi(Path(args.output))
    print(f"wrote {path}")
    return 0


def _run_in_session(fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``fn(session)`` in one committed transaction, like a request would."""
    from app.core.db import create_engine, create_sessionmaker

    async def _main() -> Any:
        engine = create_engine(get_settings())
        try:
            async with create_sessionmaker(engine)() as session:
                result = await fn(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(_main())


def cmd_seed(args: argparse.Namespace) -> int:
    from app.core.clock import SystemClock
    from app.reference import service as reference_service

    report = _run_in_session(
        lambda s: reference_service.seed(s, now=SystemClock().now(), data_dir=args.data_dir)
    )
    print(report.render())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.core.clock import SystemClock
    from app.reference import demo

    lines = _run_in_session(
        lambda s: demo.create_demo(s, now=SystemClock().now(), password=args.password)
    )
    print("\n".join(lines))
    return 0


def cmd_create_staff(args: argparse.Namespace) -> int:
    from app.core.clock import SystemClock
    from app.staff import service as staff_service
    from app.staff.schemas import StaffCreate

    payload = StaffCreate(
        username=args.username,
        password=args.password,
        role=args.role,
        unit_code=args.unit,
        department_code=args.department,
        region_code=args.region,
        display_name=args.name or args.username,
    )
    user = _run_in_session(
        lambda s: staff_service.create_staff(s, payload, now=SystemClock().now())
    )
    print(f"created staff {user.username} (id {user.id}, role {user.role.value})")
    return 0


def cmd_calendar_import(args: argparse.Namespace) -> int:
    from app.core.clock import SystemClock
    from app.routing import calendar_service

    data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    entries = calendar_service.parse_schedule(data)
    count = _run_in_session(
        lambda s: calendar_service.import_schedule(
            s, entries, actor=args.actor, now=SystemClock().now()
        )
    )
    print(f"imported {count} calendar days for {sorted({e.day.year for e in entries})}")
    return 0


def cmd_media_cleanup(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from app.core.clock import SystemClock
    from app.core.storage import create_media_store
    from app.media import service as media_service

    settings = get_settings()
    store = create_media_store(settings)
    grace = timedelta(hours=args.grace_hours or settings.media_grace_hours)
    total = 0
    while True:  # batches of 1000, each its own transaction
        n = _run_in_session(
            lambda s: media_service.cleanup(s, store, now=SystemClock().now(), grace=grace)
        )
        total += n
        if n < 1000:
            break
    print(f"deleted {total} unattached media older than {grace}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from app.core.clock import SystemClock
    from app.core.db import create_engine, create_sessionmaker
    from app.core.logging import configure_logging
    from app.core.shared import SharedStore, create_shared_store
    from app.wechat.client import WeChatClient
    from app.worker import run

    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)

    async def _main() -> None:
        engine = create_engine(settings)
        maker = create_sessionmaker(engine)
        shared: SharedStore = create_shared_store(settings, maker)
        wechat = WeChatClient(settings, shared)
        try:
            await run(
                maker, wechat, settings, SystemClock(), interval=args.interval, once=args.once
            )
        finally:
            await wechat.aclose()
            close = getattr(shared, "close", None)
            if close is not None:
                await close()
            await engine.dispose()

    asyncio.run(_main())
    return 0


def cmd_stats_rebuild(args: argparse.Namespace) -> int:
    from app.stats import rollup

    replayed = _run_in_session(rollup.rebuild)
    print(f"rebuilt statistics from {replayed} events")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from app.audit import verify

    report = _run_in_session(verify)
    print(
        f"checked {report.cases} cases, {report.disclosure_series} disclosure series, "
        f"{report.events} events"
    )
    if report.first_break is not None:
        print(report.first_break.render())
        return 1
    print("all event chains intact")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ydt", description="Yidiantong 监督一点通 service")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    p.add_argument("revision", nargs="?", default="head")
    p.add_argument("--downgrade", action="store_true", help="downgrade to REVISION (default base)")
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("serve", help="run the HTTP service (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("seed", help="load reference data (idempotent, validated)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.set_defaults(fn=cmd_seed)

    p = sub.add_parser("demo", help="create demo staff accounts and print them")
    p.add_argument("--password", default="Demo#2026")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("create-staff", help="create a staff account")
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--role", required=True, choices=[r.value for r in StaffRole])
    p.add_argument("--unit", default=None, help="supervision unit code, e.g. XZ-511702005")
    p.add_argument("--department", default=None, help="department code for handlers, e.g. D001")
    p.add_argument(
        "--region",
        default=None,
        help="handlers: the department's region; clerk/committee: their village",
    )
    p.add_argument("--name", default=None, help="display name")
    p.set_defaults(fn=cmd_create_staff)

    p = sub.add_parser("openapi", help="write the OpenAPI document")
    p.add_argument("--output", default=str(PROJECT_ROOT / "openapi" / "openapi.json"))
    p.set_defaults(fn=cmd_openapi)

    p = sub.add_parser("worker", help="periodic work: red-card orders, notification delivery")
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--once", action="store_true")
    p.set_defaults(fn=cmd_worker)

    audit = sub.add_parser("audit", help="audit tools").add_subparsers(
        dest="audit_command", required=True
    )
    p = audit.add_parser("verify", help="recompute every event hash chain (cases and disclosures)")
    p.set_defaults(fn=cmd_audit_verify)

    stats = sub.add_parser("stats", help="statistics").add_subparsers(
        dest="stats_command", required=True
    )
    p = stats.add_parser("rebuild", help="recompute the rollups from the event log")
    p.set_defaults(fn=cmd_stats_rebuild)

    media = sub.add_parser("media", help="media maintenance").add_subparsers(
        dest="media_command", required=True
    )
    p = media.add_parser("cleanup", help="delete media never attached within the grace period")
    p.add_argument("--grace-hours", type=int, default=None)
    p.set_defaults(fn=cmd_media_cleanup)

    cal = sub.add_parser("calendar", help="working-day calendar").add_subparsers(
        dest="calendar_command", required=True
    )
    p = cal.add_parser("import", help="import a State Council holiday schedule (JSON)")
    p.add_argument("file")
    p.add_argument("--actor", default="cli")
    p.set_defaults(fn=cmd_calendar_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
    except ConfigurationError as exc:
        print(f"ydt: configuration error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "input"
            print(f"ydt: {where}: {err['msg']}", file=sys.stderr)
        return 2
    except Exception as exc:
        from app.core.errors import AppError

        if isinstance(exc, AppError):
            print(f"ydt: {exc.detail}", file=sys.stderr)
            return 1
        raise
    return code


if __name__ == "__main__":
    sys.exit(main())
