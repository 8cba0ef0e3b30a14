"""open311 and duplicates: integrator api keys, merges, follows, suggestion corrections

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 18:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ('online', 'visit', 'phone', 'letter', 'door_to_door', 'agent')


def _channel_check(channels: Sequence[str]) -> None:
    """Rewrite the channel CHECK by hand (a new value: open311)."""
    values = ", ".join(f"'{c}'" for c in channels)
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_complaints_complaint_channel'), type_='check')
        batch_op.create_check_constraint('complaint_channel', f"channel IN ({values})")
    _restore_queue_indexes()


def upgrade() -> None:
    op.create_table('integrator_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('contact', sa.String(length=120), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('requests_per_hour', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_integrator_keys_created_by_staff_users')),
    sa.ForeignKeyConstraint(['revoked_by'], ['staff_users.id'], name=op.f('fk_integrator_keys_revoked_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integrator_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_integrator_keys_key_hash'))
    )
    op.create_table('open311_tokens',
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('complaint_id', sa.String(length=32), nullable=False),
    sa.Column('integrator_key_id', sa.Integer(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_open311_tokens_complaint_id_complaints')),
    sa.ForeignKeyConstraint(['integrator_key_id'], ['integrator_keys.id'], name=op.f('fk_open311_tokens_integrator_key_id_integrator_keys')),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_open311_tokens'))
    )
    with op.batch_alter_table('open311_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_open311_tokens_complaint', ['complaint_id'], unique=False)
    _channel_check((*CHANNELS, 'open311'))


def downgrade() -> None:
    # Filings that came in by Open311 keep their rows: they count as online ones.
    op.execute("UPDATE complaints SET channel = 'online' WHERE channel = 'open311'")
    _channel_check(CHANNELS)
    with op.batch_alter_table('open311_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_open311_tokens_complaint')
    op.drop_table('open311_tokens')
    op.drop_table('integrator_keys')


def _restore_queue_indexes() -> None:
    """SQLite's batch mode rebuilds complaints from reflection, which cannot see
    expression indexes (0008): put them back."""
    if op.get_bind().dialect.name != 'sqlite':
        return
    for name, where in (
        ('ix_complaints_queue_open', "status NOT IN ('closed', 'rejected')"),
        ('ix_complaints_queue_done', "status IN ('closed', 'rejected')"),
    ):
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON complaints ((-priority), due_at, id) WHERE {where}')
