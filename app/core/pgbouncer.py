"""Engine options for PostgreSQL behind PgBouncer in transaction mode.

In transaction mode PgBouncer hands each transaction (and each statement
outside one) to whichever server connection is free. A prepared statement
lives on one server connection, so a statement prepared in one transaction
and reused in the next may not exist where it runs, or a name may already
be taken there by another client. SQLAlchemy's asyncpg dialect documents the
cure (``Prepared Statement Name with PGBouncer``): asyncpg's statement cache
off (``statement_cache_size=0``), SQLAlchemy's own cache of prepared
statements off (``prepared_statement_cache_size=0``), and a unique name for
every statement the dialect still prepares to learn result types, so two
clients can never collide on ``__asyncpg_stmt_1__``.

Session state does not survive either: the code uses transaction-scoped
advisory locks only (``pg_advisory_xact_lock``), no LISTEN, no SET outside
a transaction.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from app.core.config import Settings


def statement_name() -> str:
    """A name no other client or statement will use."""
    return f"__asyncpg_{uuid4().hex}__"


def connect_args(settings: Settings) -> dict[str, Any]:
    """What asyncpg's ``connect()`` must be given for this deployment."""
    if not settings.database_pgbouncer:
        return {}
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": statement_name,
    }


def engine_options(settings: Settings, url: str) -> dict[str, Any]:
    """``create_async_engine`` keyword arguments for a PostgreSQL ``url``."""
    if url.startswith("sqlite"):
        return {}
    args = connect_args(settings)
    return {"connect_args": args} if args else {}
