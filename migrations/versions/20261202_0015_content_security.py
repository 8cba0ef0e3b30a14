"""content security: WeChat moderation verdicts for text and media

``content_checks`` holds every text, image, key frame and audio track sent to
WeChat (msgSecCheck / mediaCheckAsync v2) with its trace id and verdict;
``media.moderation`` and ``complaints.moderation`` carry the verdict the
staff views read. Existing rows stay NULL: nothing stored before this was
checked, and hiding it now would take evidence away from open cases.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 18:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'content_checks',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('target', sa.String(length=80), nullable=False),
        sa.Column('complaint_id', sa.String(length=32), nullable=True),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('part', sa.String(length=32), nullable=False),
        sa.Column('object_key', sa.String(length=200), nullable=True),
        sa.Column('openid_sealed', sa.Text(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('verdict', sa.String(length=16), nullable=False),
        sa.Column('label', sa.Integer(), nullable=True),
        sa.Column('trace_id', sa.String(length=128), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('submitted_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('decided_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_checks')),
        sa.UniqueConstraint('trace_id', name=op.f('uq_content_checks_trace_id')),
    )
    with op.batch_alter_table('content_checks', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_content_checks_complaint_id'), ['complaint_id'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_content_checks_target'), ['target'], unique=False)
        batch_op.create_index('ix_content_checks_state_next', ['state', 'next_at'], unique=False)
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moderation', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('moderation_label', sa.Integer(), nullable=True))
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moderation', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_column('moderation')
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_column('moderation_label')
        batch_op.drop_column('moderation')
    with op.batch_alter_table('content_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_content_checks_state_next')
        batch_op.drop_index(batch_op.f('ix_content_checks_target'))
        batch_op.drop_index(batch_op.f('ix_content_checks_complaint_id'))
    op.drop_table('content_checks')
