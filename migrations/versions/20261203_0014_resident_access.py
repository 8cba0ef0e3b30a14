"""resident access: query codes for offline intake, historical cases, pending notices

Schema:
* complaints.historical / imported_at: 历史件补录, cases entered after the fact
  with their real dates and outcome;
* closed_untimed on the four rollup tables: of the closed, those whose
  timeliness is not counted (historical cases), so on-time rates leave them out;
* notifications.data: the pieces a WeChat template's fields are filled from.

Data: resident notices that an earlier worker marked ``skipped`` only because
WeChat or a template was not configured become ``pending`` again: they were
never final, and go out once the configuration arrives.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 18:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db  # noqa: F401

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = ('stats_town_day', 'stats_unit_month', 'stats_item_month', 'stats_daily')
NOT_CONFIGURED = '未配置订阅消息模板或微信'

notifications = sa.table(
    'notifications',
    sa.column('status', sa.String),
    sa.column('last_error', sa.Text),
    sa.column('channel', sa.String),
)


# Plain ADD/DROP COLUMN (SQLite 3.35+ has both): a batch rebuild of complaints
# would lose its expression indexes (ix_complaints_queue_open/_done).


def upgrade() -> None:
    op.add_column(
        'complaints',
        sa.Column('historical', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        'complaints',
        sa.Column('imported_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
    )
    for table in ROLLUPS:
        op.add_column(
            table, sa.Column('closed_untimed', sa.Integer(), server_default='0', nullable=False)
        )
    op.add_column('notifications', sa.Column('data', sa.JSON(), nullable=True))
    op.execute(
        notifications.update()
        .where(
            notifications.c.status == 'skipped',
            notifications.c.channel == 'wechat_subscribe',
            notifications.c.last_error == NOT_CONFIGURED,
        )
        .values(status='pending', last_error=None)
    )


def downgrade() -> None:
    op.drop_column('notifications', 'data')
    for table in ROLLUPS:
        op.drop_column(table, 'closed_untimed')
    op.drop_column('complaints', 'imported_at')
    op.drop_column('complaints', 'historical')
