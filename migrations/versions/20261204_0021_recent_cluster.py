"""recent cluster: the class-case alert's 30-day counts kept as a running total

* stats_recent_cluster (unit, item, township): cases received over the 30
  local days ending stats_recent_window.last_day; unit 0 is the total over
  every unit. Indexed in the alert's order (largest first), so the alert
  reads the top groups instead of summing a month of stats_daily, the part
  of the rankings that grew with the data (bench/README.md).
* stats_recent_window: the window those rows count.
* ix_complaints_item_town_received gains the id, the alert's tie-break: the
  first 50 cases of a cluster are then the index's order, a scan cut after 50
  rows whatever plan PostgreSQL picks. Without it the generic plan a prepared
  statement switches to after five runs read and sorted every case of the
  twenty largest clusters (11 ms instead of 2 at 1M cases).

Left empty here: without a window row readers sum stats_daily as before,
and the projector's first pass counts the window (app/stats/recent.py).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 18:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_recent_cluster",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=8), nullable=False),
        sa.Column("township_code", sa.String(length=12), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "unit_id", "item_code", "township_code", name=op.f("pk_stats_recent_cluster")
        ),
    )
    op.create_index(
        "ix_stats_recent_cluster_top",
        "stats_recent_cluster",
        ["unit_id", sa.text("received DESC"), "item_code", "township_code"],
    )
    op.create_table(
        "stats_recent_window",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_recent_window")),
    )
    op.drop_index("ix_complaints_item_town_received", table_name="complaints")
    op.create_index(
        "ix_complaints_item_town_received",
        "complaints",
        ["item_code", "township_code", "received_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_complaints_item_town_received", table_name="complaints")
    op.create_index(
        "ix_complaints_item_town_received",
        "complaints",
        ["item_code", "township_code", "received_at"],
    )
    op.drop_table("stats_recent_window")
    op.drop_index("ix_stats_recent_cluster_top", table_name="stats_recent_cluster")
    op.drop_table("stats_recent_cluster")
