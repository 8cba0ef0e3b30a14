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

from app.core.config import (
    ConfigurationError,
    Settings,
    filing_turns_per_process,
    get_settings,
)
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


def served_base_url(host: str, port: int) -> str:
    """The URL a browser on this machine reaches ``ydt serve --host --port`` at.

    A wildcard bind is reached through loopback; an IPv6 literal needs brackets.
    """
    if host in ("", "0.0.0.0"):  # noqa: S104 - recognising the wildcard, not binding it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def derived_base_url(settings: Settings, host: str, port: int) -> str | None:
    """On the embedded default, where ``ydt serve`` binds, unless YDT_PUBLIC_BASE_URL
    (environment or .env) says otherwise: QR codes and local media links must point
    where this process serves (``PORT=8002 scripts/run.sh``), not at port 8000.
    Outside the embedded default the operator's setting (or its default) stands."""
    if not settings.is_embedded or "public_base_url" in settings.model_fields_set:
        return None
    return served_base_url(host, port)


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    settings = get_settings()
    settings.resolved_jwt_secret()  # refuse early, with the clear message
    from app.core.keys import Keyring

    Keyring.from_settings(settings)  # the identity and chain keys too
    derived = derived_base_url(settings, args.host, args.port)
    if derived is not None:
        # The processes uvicorn starts read their settings from the environment.
        os.environ["YDT_PUBLIC_BASE_URL"] = derived
        get_settings.cache_clear()
    if "filing_statements_in_flight" not in settings.model_fields_set:
        os.environ["YDT_FILING_STATEMENTS_IN_FLIGHT"] = str(filing_turns_per_process(args.workers))
        get_settings.cache_clear()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Forwarding headers (the client address, X-Forwarded-Proto) only from
        # YDT_TRUSTED_PROXIES, like app.core.ratelimit.client_ip: uvicorn's own
        # default trusts 127.0.0.1, which let a rotating X-Forwarded-For through.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(str(n) for n in settings.trusted_proxies) or None,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
    return 0


def cmd_env_example(args: argparse.Namespace) -> int:
    from app.core import env_example

    try:
        path = env_example.write(Settings, Path(args.output))
    except env_example.MissingDescription as exc:
        print(f"ydt: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
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
    from app.taxonomy import service as taxonomy_service

    model_dir = get_settings().model_dir
    model = _run_in_session(lambda s: taxonomy_service.learned_model(s, model_dir))
    print("suggestion model ready" if model else "suggestion model unavailable (BM25 alone)")
    return 0


def cmd_taxonomy_retrain(args: argparse.Namespace) -> int:
    from app.taxonomy.retrain import retrain

    model_dir = get_settings().model_dir
    print(_run_in_session(lambda s: retrain(s, model_dir)))
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
    from app.media import maintenance as media_maintenance
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
    orphans = _run_in_session(
        lambda s: media_maintenance.sweep_orphans(s, store, now=SystemClock().now(), days=args.days)
    )
    print(f"deleted {orphans} stored objects no media row owns (last {args.days} days)")
    return 0


def cmd_media_verify(args: argparse.Namespace) -> int:
    from app.core.storage import create_media_store
    from app.media import maintenance as media_maintenance

    store = create_media_store(get_settings())
    checked, problems = _run_in_session(lambda s: media_maintenance.verify_all(s, store))
    for check in problems:
        print(f"{check.media_id} {check.key}: {check.describe()}")
    print(f"checked {checked} media files against their recorded sha256: {len(problems)} problems")
    return 1 if problems else 0


def cmd_worker(args: argparse.Namespace) -> int:
    from app.core.clock import SystemClock
    from app.core.db import create_engine, create_sessionmaker, tune_interpreter
    from app.core.logging import configure_logging
    from app.core.shared import SharedStore, create_shared_store
    from app.wechat.client import WeChatClient
    from app.worker import run

    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    from app.core import keys

    keys.install(keys.Keyring.from_settings(settings))  # delivery unseals openids; refuse early
    if settings.checkpoint_minutes:
        from app.audit.signing import load_signer

        load_signer(settings)  # refuse to start without the checkpoint key

    async def _main() -> None:
        engine = create_engine(settings)
        tune_interpreter(engine)
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

    try:  # the event loop uvicorn runs the app on (uvicorn[standard]), when installed
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(_main())
    else:
        uvloop.run(_main())
    return 0


def cmd_stats_rebuild(args: argparse.Namespace) -> int:
    from app.stats import rollup

    replayed = _run_in_session(rollup.rebuild)
    print(f"rebuilt statistics from {replayed} events")
    return 0


def cmd_duplicates_evaluate(args: argparse.Namespace) -> int:
    from app.duplicates import evaluate

    threshold = args.threshold if args.threshold is not None else Settings().duplicate_threshold
    return evaluate.main(threshold, verbose=args.verbose)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from app.audit import exported, verify
    from app.audit.signing import trusted_keys

    settings = get_settings()
    file = None
    if args.checkpoint:
        try:
            file = exported.load(Path(args.checkpoint).read_bytes())
        except (OSError, ValueError) as exc:
            print(f"ydt: {args.checkpoint}: {exc}", file=sys.stderr)
            return 2
    trusted = trusted_keys(settings) or None  # none known: said in the report
    report = _run_in_session(lambda s: verify(s, trusted=trusted, exported=file))
    print("\n".join(report.lines()))
    return 1 if report.problems else 0


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from app.audit.checkpoint import checkpoint_now
    from app.audit.signing import load_signer
    from app.core.clock import SystemClock

    settings = get_settings()
    load_signer(settings)  # refuse early, with the clear message
    cp = _run_in_session(lambda s: checkpoint_now(s, settings, now=SystemClock().now()))
    if cp is None:
        print("ydt: another checkpoint was written at the same moment; run again", file=sys.stderr)
        return 1
    print(
        f"checkpoint #{cp.seq}: {cp.cases} cases, {cp.series} disclosure series, "
        f"root {cp.root}, signed by key {cp.key_id}"
    )
    for line in cp.anomalies:
        print(f"ANOMALY {line}")
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from app.audit import exported
    from app.audit.signing import trusted_keys
    from app.core.clock import SystemClock

    trusted = trusted_keys(get_settings())
    doc = _run_in_session(
        lambda s: exported.export(s, trusted, everything=args.all, now=SystemClock().now())
    )
    text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    if not args.out:
        sys.stdout.write(text)
        return 0
    Path(args.out).write_text(text, encoding="utf-8")
    latest = doc["checkpoints"][-1]
    print(
        f"wrote {args.out}: {len(doc['checkpoints'])} checkpoint(s) up to #{latest['seq']}, "
        f"{len(doc['leaves']['items'])} chain heads, public key(s) " + ", ".join(doc["public_keys"])
    )
    return 0


def cmd_audit_keygen(args: argparse.Namespace) -> int:
    from app.audit.signing import new_key

    pem, public = new_key()
    if args.out:
        Path(args.out).write_text(pem, encoding="utf-8")
        Path(args.out).chmod(0o600)
        print(f"wrote the signing key to {args.out}")
    else:
        print(pem, end="")
    print(f"public key (give it to the auditors; YDT_AUDIT_PUBLIC_KEYS): {public}")
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from app import keys_admin

    print("\n".join(keys_admin.generate()))
    return 0


def cmd_keys_status(args: argparse.Namespace) -> int:
    from app import keys_admin

    keyring = keys_admin.reload(get_settings())
    used = _run_in_session(keys_admin.usage)
    print("\n".join(used.render(keyring)))
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from app import keys_admin

    settings = get_settings()
    keyring = keys_admin.reload(settings)
    if args.new_key:
        kid = keys_admin.add_key(keyring)
        keyring = keys_admin.reload(settings)
        print(f"new active key {kid} in {keyring.kek_file}")
    done = _run_in_session(lambda s: keys_admin.rotate(s, keyring))
    print(f"re-wrapped {done} data keys with {keyring.active}")
    return 0


def cmd_keys_retire(args: argparse.Namespace) -> int:
    from app import keys_admin

    keyring = keys_admin.reload(get_settings())
    print(_run_in_session(lambda s: keys_admin.retire(s, keyring, args.kid)))
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

    p = sub.add_parser("env-example", help="write .env.example from the Settings class")
    p.add_argument("--output", default=str(PROJECT_ROOT / ".env.example"))
    p.set_defaults(fn=cmd_env_example)

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
    p = audit.add_parser(
        "verify",
        help="check every chain, every row against its events, and the chain heads against "
        "the latest checkpoint (or an exported one)",
    )
    p.add_argument("--checkpoint", default=None, help="exported checkpoint file to check against")
    p.set_defaults(fn=cmd_audit_verify)
    p = audit.add_parser("checkpoint", help="sign a checkpoint of every chain head now")
    p.set_defaults(fn=cmd_audit_checkpoint)
    q = p.add_subparsers(dest="checkpoint_command").add_parser(
        "export", help="write the latest (or all) checkpoints with the public key, as JSON"
    )
    q.add_argument("--out", default=None, help="file to write (default: standard output)")
    q.add_argument("--all", action="store_true", help="every checkpoint, not only the latest")
    q.set_defaults(fn=cmd_audit_export)
    p = audit.add_parser("keygen", help="make an Ed25519 checkpoint signing key")
    p.add_argument("--out", default=None, help="file to write the private key to (0600)")
    p.set_defaults(fn=cmd_audit_keygen)

    kcmd = sub.add_parser("keys", help="identity keys (app/keys_admin.py)").add_subparsers(
        dest="keys_command", required=True
    )
    p = kcmd.add_parser("generate", help="print new YDT_IDENTITY_KEYS / _CHAIN_KEY / _INDEX_KEY")
    p.set_defaults(fn=cmd_keys_generate)
    p = kcmd.add_parser("status", help="the loaded keys and how many records each seals")
    p.set_defaults(fn=cmd_keys_status)
    p = kcmd.add_parser("rotate", help="re-wrap every sealed record with the active key")
    p.add_argument(
        "--new-key", action="store_true", help="first add a new active key to the key file"
    )
    p.set_defaults(fn=cmd_keys_rotate)
    p = kcmd.add_parser("retire", help="drop a key no sealed record uses any more")
    p.add_argument("kid")
    p.set_defaults(fn=cmd_keys_retire)

    taxonomy = sub.add_parser("taxonomy", help="item taxonomy tools").add_subparsers(
        dest="taxonomy_command", required=True
    )
    p = taxonomy.add_parser(
        "retrain", help="rebuild the suggestion model with staff corrections; evaluate before/after"
    )
    p.set_defaults(fn=cmd_taxonomy_retrain)

    stats = sub.add_parser("stats", help="statistics").add_subparsers(
        dest="stats_command", required=True
    )
    p = stats.add_parser("rebuild", help="recompute the rollups from the event log")
    p.set_defaults(fn=cmd_stats_rebuild)

    dup = sub.add_parser("duplicates", help="duplicate detection").add_subparsers(
        dest="duplicates_command", required=True
    )
    p = dup.add_parser("evaluate", help="precision and recall on the labelled duplicate pairs")
    p.add_argument("--threshold", type=float, default=None, help="instead of the configured one")
    p.add_argument("-v", "--verbose", action="store_true", help="list the pairs it gets wrong")
    p.set_defaults(fn=cmd_duplicates_evaluate)

    media = sub.add_parser("media", help="media maintenance").add_subparsers(
        dest="media_command", required=True
    )
    p = media.add_parser("cleanup", help="delete media never attached within the grace period")
    p.add_argument("--grace-hours", type=int, default=None)
    p.add_argument(
        "--days", type=int, default=2, help="sweep objects no row owns from the last N days"
    )
    p.set_defaults(fn=cmd_media_cleanup)
    p = media.add_parser("verify", help="check every stored media file against its sha256")
    p.set_defaults(fn=cmd_media_verify)

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
