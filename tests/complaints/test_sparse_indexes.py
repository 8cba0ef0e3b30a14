"""The complaints indexes on columns most cases leave NULL hold only the rows
that have a value (migration 0022), and a lookup by that column still reads
them: a parameterised equality, as the app sends it, in a generic plan."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# index -> (a lookup the app makes through it, the parameter's type, a value)
LOOKUPS: dict[str, tuple[str, str, object]] = {
    "ix_complaints_citizen_created": (
        "SELECT id FROM complaints WHERE citizen_id = :v ORDER BY created_at DESC LIMIT 20",
        "integer",
        1,
    ),
    "ix_complaints_owner_created": (
        "SELECT id FROM complaints WHERE owner_index = :v ORDER BY created_at DESC LIMIT 20",
        "text",
        "x",
    ),
    "ix_complaints_phone_index": ("SELECT id FROM complaints WHERE phone_index = :v", "text", "x"),
    "ix_complaints_filed_by": (
        "SELECT id FROM complaints WHERE filed_by_staff_id = :v",
        "integer",
        1,
    ),
    "ix_complaints_handler": (
        "SELECT id FROM complaints WHERE handler_department_code = :v AND handler_region_code = :v",
        "text",
        "x",
    ),
}


async def _definitions(connection: AsyncConnection) -> dict[str, str]:
    if connection.dialect.name == "postgresql":
        sql = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'complaints'"
    else:
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'complaints'"
    return {r[0]: str(r[1]) for r in (await connection.exec_driver_sql(sql)).all()}


async def test_sparse_indexes_leave_out_the_rows_without_a_value(
    connection: AsyncConnection,
) -> None:
    # Autogenerate does not compare index predicates: the migration's are checked here.
    found = await _definitions(connection)
    for name in LOOKUPS:
        assert "IS NOT NULL" in found[name].upper(), found[name]


async def _plan(connection: AsyncConnection, name: str) -> str:
    sql, pg_type, value = LOOKUPS[name]
    if connection.dialect.name == "sqlite":
        rows = await connection.execute(text("EXPLAIN QUERY PLAN " + sql), {"v": value})
        return "\n".join(str(r[-1]) for r in rows.all())
    # A prepared statement's generic plan knows nothing of the value, only
    # that "=" is strict: the partial index must be provable from that alone.
    await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    await connection.exec_driver_sql(
        f"PREPARE sparse_lookup ({pg_type}) AS {sql.replace(':v', '$1')}"
    )
    try:
        rows = await connection.exec_driver_sql(f"EXPLAIN EXECUTE sparse_lookup({value!r})")
        return "\n".join(str(r[0]) for r in rows.all())
    finally:
        await connection.exec_driver_sql("DEALLOCATE sparse_lookup")


@pytest.mark.parametrize("name", sorted(LOOKUPS))
async def test_an_equality_lookup_uses_the_sparse_index(
    connection: AsyncConnection, name: str
) -> None:
    plan = await _plan(connection, name)
    assert name in plan, plan
