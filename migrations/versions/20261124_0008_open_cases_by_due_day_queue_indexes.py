"""open cases by due day; queue indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 13:30:20.646174+00:00
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_SQL = "status NOT IN ('closed', 'rejected')"
DONE_SQL = "status IN ('closed', 'rejected')"
TZ = ZoneInfo("Asia/Shanghai")


def upgrade() -> None:
    op.create_table('stats_open_due',
    sa.Column('due_day', sa.Date(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('item_code', sa.String(length=8), nullable=False),
    sa.Column('township_code', sa.String(length=12), nullable=False),
    sa.Column('county_code', sa.String(length=12), nullable=False),
    sa.Column('open', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('due_day', 'unit_id', 'item_code', 'township_code', name=op.f('pk_stats_open_due'))
    )
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_unit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('open_due_day', sa.Date(), nullable=True))
    # Expression indexes: the queue sorts by priority descending, then due time.
    op.create_index('ix_complaints_queue_open', 'complaints', [sa.text('(-priority)'), 'due_at', 'id'], unique=False, postgresql_where=sa.text(OPEN_SQL), sqlite_where=sa.text(OPEN_SQL))
    op.create_index('ix_complaints_queue_done', 'complaints', [sa.text('(-priority)'), 'due_at', 'id'], unique=False, postgresql_where=sa.text(DONE_SQL), sqlite_where=sa.text(DONE_SQL))
    # Cluster alerts read the first cases of one item in one township.
    op.create_index('ix_complaints_item_town_received', 'complaints', ['item_code', 'township_code', 'received_at'], unique=False)
    _backfill()


def _backfill() -> None:
    """Count the cases already open, as rollup.rebuild_open_due would."""
    complaints = sa.table(
        'complaints',
        sa.column('id', sa.String()),
        sa.column('status', sa.String()),
        sa.column('unit_id', sa.Integer()),
        sa.column('due_at', app.core.db.UTCDateTime()),
        sa.column('item_code', sa.String()),
        sa.column('township_code', sa.String()),
        sa.column('county_code', sa.String()),
        sa.column('open_unit_id', sa.Integer()),
        sa.column('open_due_day', sa.Date()),
    )
    open_due = sa.table(
        'stats_open_due',
        sa.column('due_day', sa.Date()),
        sa.column('unit_id', sa.Integer()),
        sa.column('item_code', sa.String()),
        sa.column('township_code', sa.String()),
        sa.column('county_code', sa.String()),
        sa.column('open', sa.Integer()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            complaints.c.id,
            complaints.c.unit_id,
            complaints.c.due_at,
            complaints.c.item_code,
            complaints.c.township_code,
            complaints.c.county_code,
        ).where(complaints.c.status.not_in(['closed', 'rejected']))
    ).all()
    counts: dict[tuple[date, int, str, str, str], int] = defaultdict(int)
    marks = []
    for r in rows:
        day = r.due_at.astimezone(TZ).date()
        counts[(day, r.unit_id, r.item_code, r.township_code, r.county_code)] += 1
        marks.append({'b_id': r.id, 'b_unit': r.unit_id, 'b_day': day})
    if marks:
        bind.execute(
            complaints.update()
            .where(complaints.c.id == sa.bindparam('b_id'))
            .values(open_unit_id=sa.bindparam('b_unit'), open_due_day=sa.bindparam('b_day')),
            marks,
        )
    if counts:
        bind.execute(
            open_due.insert(),
            [
                {'due_day': k[0], 'unit_id': k[1], 'item_code': k[2], 'township_code': k[3], 'county_code': k[4], 'open': n}
                for k, n in counts.items()
            ],
        )


def downgrade() -> None:
    op.drop_index('ix_complaints_item_town_received', table_name='complaints')
    op.drop_index('ix_complaints_queue_done', table_name='complaints')
    op.drop_index('ix_complaints_queue_open', table_name='complaints')
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_column('open_due_day')
        batch_op.drop_column('open_unit_id')
    op.drop_table('stats_open_due')
