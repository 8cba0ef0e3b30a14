"""duplicates: residents following cases, and merged (duplicate) cases

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 07:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db  # noqa: F401

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint_follows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("complaint_id", sa.String(32), sa.ForeignKey("complaints.id"), nullable=False),
        sa.Column("citizen_id", sa.Integer(), sa.ForeignKey("citizens.id"), nullable=False),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("complaint_id", "citizen_id", name="uq_complaint_follows_case_citizen"),
    )
    op.create_index("ix_complaint_follows_citizen", "complaint_follows", ["citizen_id"])
    op.create_table(
        "complaint_merges",
        sa.Column("child_id", sa.String(32), sa.ForeignKey("complaints.id"), primary_key=True),
        sa.Column("parent_id", sa.String(32), sa.ForeignKey("complaints.id"), nullable=False),
        sa.Column("merged_by", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=False),
        sa.Column("merged_at", app.core.db.UTCDateTime(), nullable=False),
        sa.Column("child_status", sa.String(16), nullable=False),
    )
    op.create_index("ix_complaint_merges_parent", "complaint_merges", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_complaint_merges_parent", table_name="complaint_merges")
    op.drop_table("complaint_merges")
    op.drop_index("ix_complaint_follows_citizen", table_name="complaint_follows")
    op.drop_table("complaint_follows")
