"""sparse case indexes: the complaints indexes on columns most cases leave empty

A new case writes an entry into every index of complaints (fourteen), and a
filing's statement spends most of its time in PostgreSQL there. Five of those
indexes serve lookups by a column that most cases leave NULL: who filed it
for a resident at a counter (staff intake only), the owner's and the phone's
blind indexes (protected cases only), the owner in the clear (unprotected
cases only) and the department a case was handed to (few, and only later).
Every lookup through them is an equality on that column, which PostgreSQL and
SQLite both take to imply IS NOT NULL, so the same plans use them partial and
a resident's filing skips two or three index entries (bench/README.md).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 21:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name, columns, the column that is mostly NULL
SPARSE = (
    ("ix_complaints_citizen_created", ["citizen_id", "created_at"], "citizen_id"),
    ("ix_complaints_owner_created", ["owner_index", "created_at"], "owner_index"),
    ("ix_complaints_phone_index", ["phone_index"], "phone_index"),
    ("ix_complaints_filed_by", ["filed_by_staff_id"], "filed_by_staff_id"),
    (
        "ix_complaints_handler",
        ["handler_department_code", "handler_region_code"],
        "handler_department_code",
    ),
)


def upgrade() -> None:
    for name, columns, sparse in SPARSE:
        op.drop_index(name, table_name="complaints")
        where = sa.text(f"{sparse} IS NOT NULL")
        op.create_index(name, "complaints", columns, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name, columns, _ in SPARSE:
        op.drop_index(name, table_name="complaints")
        op.create_index(name, "complaints", columns)
