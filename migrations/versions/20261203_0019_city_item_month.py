"""city item month: the city-wide item × month rollup, and the cluster alert's index

* stats_city_item_month: per item and month for the whole city, so the
  city-wide overview reads at most 517 × 12 rows a year instead of
  stats_item_month's item × county × month (45k rows at 1M cases). Filled here
  from stats_item_month, so an upgraded database answers right at once; from
  then on every rollup write keeps it (app/stats/rollup.py).
* ix_stats_daily_cluster on stats_daily(day, item_code, township_code)
  carrying the received count: the class-case alert sums the last 30 days by
  item and township from it alone, without reading the wide rollup rows.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 09:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METRICS = (
    "received",
    "accepted",
    "closed",
    "closed_on_time",
    "handling_days_sum",
    "rated",
    "satisfied",
    "basic",
    "unsatisfied",
    "score_sum",
    "unsolved",
    "reopened",
    "fake_closures",
    "closed_untimed",
)


def upgrade() -> None:
    op.create_table(
        "stats_city_item_month",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("item_code", sa.String(length=8), nullable=False),
        *(
            sa.Column(m, sa.Integer(), nullable=False, server_default="0")
            if m == "closed_untimed"
            else sa.Column(m, sa.Integer(), nullable=False)
            for m in METRICS
        ),
        sa.PrimaryKeyConstraint("month", "item_code", name=op.f("pk_stats_city_item_month")),
    )
    cols = ", ".join(METRICS)
    sums = ", ".join(f"sum({m})" for m in METRICS)
    op.execute(
        f"INSERT INTO stats_city_item_month (month, item_code, {cols}) "
        f"SELECT month, item_code, {sums} FROM stats_item_month GROUP BY month, item_code"
    )
    op.create_index(
        "ix_stats_daily_cluster",
        "stats_daily",
        ["day", "item_code", "township_code"],
        postgresql_include=["received", "unit_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_stats_daily_cluster", table_name="stats_daily")
    op.drop_table("stats_city_item_month")
