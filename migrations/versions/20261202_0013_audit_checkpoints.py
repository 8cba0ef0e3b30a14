"""audit checkpoints: signed Merkle roots over chain heads

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 18:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=64), nullable=False),
    sa.Column('format', sa.Integer(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('root', sa.String(length=64), nullable=False),
    sa.Column('bucket_roots', sa.JSON(), nullable=False),
    sa.Column('cases', sa.Integer(), nullable=False),
    sa.Column('series', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('anomalies', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints')),
    sa.UniqueConstraint('period', name=op.f('uq_audit_checkpoints_period')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_checkpoints_seq'))
    )
    op.create_table('audit_heads',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('chain_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=32), nullable=True),
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['audit_checkpoints.id'], name=op.f('fk_audit_heads_checkpoint_id_audit_checkpoints')),
    sa.PrimaryKeyConstraint('kind', 'chain_id', name=op.f('pk_audit_heads'))
    )
    with op.batch_alter_table('audit_heads', schema=None) as batch_op:
        batch_op.create_index('ix_audit_heads_bucket', ['bucket'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_heads', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_heads_bucket')
    op.drop_table('audit_heads')
    op.drop_table('audit_checkpoints')
