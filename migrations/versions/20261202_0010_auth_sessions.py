"""staff sessions: refresh-token families, login attempts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:10:00+00:00

Sessions (``auth_sessions``) make tokens revocable: a refresh token works once,
a reused one revokes its family, and access tokens name their session. The
per-account lockout (``failed_login_count``, ``locked_until``) let anyone lock
any cadre out; it is replaced by throttling in the shared store and the audit
table ``staff_login_attempts``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('auth_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('subject_kind', sa.Enum('citizen', 'staff', name='session_subject', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('api', 'console', name='session_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions'))
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_auth_sessions_subject', ['subject_kind', 'subject_id'], unique=False)
        batch_op.create_index('ix_auth_sessions_expires_at', ['expires_at'], unique=False)

    op.create_table('staff_login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('outcome', sa.Enum('success', 'bad_password', 'unknown_user', 'disabled', 'throttled', name='login_outcome', native_enum=False, create_constraint=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_staff_login_attempts_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login_attempts'))
    )
    with op.batch_alter_table('staff_login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_staff_login_attempts_staff_at', ['staff_id', 'at'], unique=False)
        batch_op.create_index('ix_staff_login_attempts_staff_ip', ['staff_id', 'ip'], unique=False)

    # A plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), not a rebuild:
    # rebuilding staff_users would drop a table other rows point at.
    with op.batch_alter_table('staff_users', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_login_count')


def downgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('failed_login_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', app.core.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('staff_login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_login_attempts_staff_ip')
        batch_op.drop_index('ix_staff_login_attempts_staff_at')
    op.drop_table('staff_login_attempts')

    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_auth_sessions_expires_at')
        batch_op.drop_index('ix_auth_sessions_subject')
    op.drop_table('auth_sessions')
