"""same day: the 两个当天 figure kept as rollups instead of scanned

* stats_same_day_town (day, township) and stats_same_day (day, township,
  unit): of the real-name online cases accepted (closed) on a local day, how
  many heard it that day. The overview read every such case and its outbox
  rows (11× slower at 1M cases than at 10k, bench/README.md).
* stats_same_day_marks: where each counted case stands in them now, so a
  recount moves a case instead of adding it twice (app/stats/same_day.py).
* ix_notifications_told: a case's delivered acceptance and closure notices,
  which a recount reads (partial: a filing's own notice adds no entry).

Filled here from the cases and the outbox, so an upgraded database answers
right at once; from then on the projector and the notification sender keep
them, and ``ydt stats rebuild`` recounts them.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 17:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = ("accepted", "accepted_told", "closed", "closed_told")


def _counters() -> list[sa.Column[int]]:
    return [sa.Column(c, sa.Integer(), nullable=False, server_default="0") for c in COUNTERS]


def _local_day(column: str) -> str:
    """Asia/Shanghai has had no daylight saving since 1991: +8 hours on SQLite."""
    if op.get_bind().dialect.name == "postgresql":
        return f"(timezone('Asia/Shanghai', {column}))::date"
    return f"date({column}, '+8 hours')"


def _told(kind: str, moment: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM notifications n WHERE n.complaint_id = c.id "
        f"AND n.kind = '{kind}' AND n.status = 'sent' AND n.recipient_kind = 'citizen' "
        "AND (n.recipient_id = c.citizen_id OR (n.recipient_id IS NULL AND c.citizen_id IS NULL)) "
        f"AND n.sent_at IS NOT NULL AND {_local_day('n.sent_at')} = {_local_day(moment)})"
    )


def upgrade() -> None:
    op.create_table(
        "stats_same_day_town",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("township_code", sa.String(length=12), nullable=False),
        *_counters(),
        sa.PrimaryKeyConstraint("day", "township_code", name=op.f("pk_stats_same_day_town")),
    )
    op.create_table(
        "stats_same_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("township_code", sa.String(length=12), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        *_counters(),
        sa.PrimaryKeyConstraint("day", "township_code", "unit_id", name=op.f("pk_stats_same_day")),
    )
    op.create_index("ix_stats_same_day_unit_day", "stats_same_day", ["unit_id", "day"])
    op.create_table(
        "stats_same_day_marks",
        sa.Column("complaint_id", sa.String(length=32), nullable=False),
        sa.Column("township_code", sa.String(length=12), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("accepted_day", sa.Date(), nullable=True),
        sa.Column("accepted_told", sa.Boolean(), nullable=False),
        sa.Column("closed_day", sa.Date(), nullable=True),
        sa.Column("closed_told", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("pk_stats_same_day_marks")),
    )
    told = "kind IN ('accepted', 'closed') AND status = 'sent'"
    op.create_index(
        "ix_notifications_told",
        "notifications",
        ["complaint_id"],
        postgresql_where=sa.text(told),
        sqlite_where=sa.text(told),
    )
    fill()


def fill() -> None:
    """Count the cases already there (tests/stats/test_same_day_rollup.py runs
    this on a live scenario and compares it with the incremental tables)."""
    op.execute(
        "INSERT INTO stats_same_day_marks (complaint_id, township_code, unit_id, "
        "accepted_day, accepted_told, closed_day, closed_told) "
        f"SELECT c.id, c.township_code, c.unit_id, {_local_day('c.accepted_at')}, "
        f"{_told('accepted', 'c.accepted_at')}, {_local_day('c.closed_at')}, "
        f"{_told('closed', 'c.closed_at')} FROM complaints c "
        "WHERE c.channel = 'online' AND c.anonymous = false AND c.historical = false "
        "AND (c.accepted_at IS NOT NULL OR c.closed_at IS NOT NULL)"
    )
    told = "CASE WHEN {} THEN 1 ELSE 0 END"
    op.execute(
        "INSERT INTO stats_same_day (day, township_code, unit_id, accepted, accepted_told, "
        "closed, closed_told) SELECT day, township_code, unit_id, sum(a), sum(at), sum(cl), "
        "sum(ct) FROM ("
        f"SELECT accepted_day AS day, township_code, unit_id, 1 AS a, "
        f"{told.format('accepted_told')} AS at, 0 AS cl, 0 AS ct FROM stats_same_day_marks "
        "WHERE accepted_day IS NOT NULL UNION ALL "
        f"SELECT closed_day, township_code, unit_id, 0, 0, 1, {told.format('closed_told')} "
        "FROM stats_same_day_marks WHERE closed_day IS NOT NULL"
        ") AS moments GROUP BY day, township_code, unit_id"
    )
    op.execute(
        "INSERT INTO stats_same_day_town (day, township_code, accepted, accepted_told, "
        "closed, closed_told) SELECT day, township_code, sum(accepted), sum(accepted_told), "
        "sum(closed), sum(closed_told) FROM stats_same_day GROUP BY day, township_code"
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_told", table_name="notifications")
    op.drop_table("stats_same_day_marks")
    op.drop_index("ix_stats_same_day_unit_day", table_name="stats_same_day")
    op.drop_table("stats_same_day")
    op.drop_table("stats_same_day_town")
