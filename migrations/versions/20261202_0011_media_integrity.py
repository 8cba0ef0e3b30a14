"""media: one-time upload keys, decoded properties, content-security state

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:10:00+00:00

Direct uploads land at a one-time ``upload_key`` and are copied to
``storage_key`` once checked; ``etag`` seals the sha256 check; voice and video
get their decoded duration and codecs, and the worker's playable copy and
poster frame are recorded in ``derivatives``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upload_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('etag', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('duration_ms', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('codec', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('audio_codec', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('derivatives', sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                'derive_state',
                sa.Enum(
                    'pending', 'done', 'failed',
                    name='media_derive_state', native_enum=False, create_constraint=True,
                    length=7,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column('derive_attempts', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.add_column(
            sa.Column('derive_after', app.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('verified_at', app.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('integrity_failed_at', app.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index('ix_media_derive_state', ['derive_state'], unique=False)
        batch_op.create_index(
            'ix_media_status_verified', ['status', 'verified_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_index('ix_media_status_verified')
        batch_op.drop_index('ix_media_derive_state')
        batch_op.drop_column('integrity_failed_at')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('derive_after')
        batch_op.drop_column('derive_attempts')
        batch_op.drop_constraint(op.f('ck_media_media_derive_state'), type_='check')
        batch_op.drop_column('derive_state')
        batch_op.drop_column('derivatives')
        batch_op.drop_column('audio_codec')
        batch_op.drop_column('codec')
        batch_op.drop_column('duration_ms')
        batch_op.drop_column('etag')
        batch_op.drop_column('upload_key')
