"""projector: reference version token, pending events, high-water marks

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 18:10:00+00:00

Triggers, not application code, keep both bookkeeping tables true: every
change to reference data gives ``reference_version`` a new random token (a
counter could repeat a value after a rollback and let a cache serve data from
a transaction that never committed), and every inserted event is queued in
``stats_pending`` for the projector. Nothing can write around them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the per-process reference cache holds (app/routing/refcache.py).
REFERENCE_TABLES = (
    'regions',
    'departments',
    'supervision_units',
    'taxonomy_versions',
    'categories',
    'items',
    'routing_overrides',
    'designated_cadres',
    'calendar_days',
    'staff_users',
)
OPS = ('insert', 'update', 'delete')


def upgrade() -> None:
    op.create_table('reference_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reference_version'))
    )
    op.create_table('stats_pending',
    sa.Column('event_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('complaint_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_stats_pending'))
    )
    op.create_table('projector_marks',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('high_water', sa.Integer(), nullable=False),
    sa.Column('applied', sa.Integer(), nullable=False),
    sa.Column('updated_at', app.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_projector_marks'))
    )
    op.execute("INSERT INTO reference_version (id, token) VALUES (1, 'initial')")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE FUNCTION ydt_bump_reference() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE reference_version SET token = md5(random()::text || clock_timestamp()::text) "
            "WHERE id = 1; RETURN NULL; END $$"
        )
        for table in REFERENCE_TABLES:
            op.execute(
                f"CREATE TRIGGER trg_{table}_refversion AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION ydt_bump_reference()"
            )
        op.execute(
            "CREATE FUNCTION ydt_queue_event() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO stats_pending (event_id, complaint_id, created_at) "
            "VALUES (NEW.id, NEW.complaint_id, NEW.created_at); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER trg_complaint_events_pending AFTER INSERT ON complaint_events "
            "FOR EACH ROW EXECUTE FUNCTION ydt_queue_event()"
        )
    else:
        for table in REFERENCE_TABLES:
            for o in OPS:
                op.execute(
                    f"CREATE TRIGGER trg_{table}_refversion_{o} AFTER {o.upper()} ON {table} "
                    "BEGIN UPDATE reference_version SET token = lower(hex(randomblob(16))) "
                    "WHERE id = 1; END"
                )
        op.execute(
            "CREATE TRIGGER trg_complaint_events_pending AFTER INSERT ON complaint_events "
            "BEGIN INSERT INTO stats_pending (event_id, complaint_id, created_at) "
            "VALUES (NEW.id, NEW.complaint_id, NEW.created_at); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER trg_complaint_events_pending ON complaint_events")
        op.execute("DROP FUNCTION ydt_queue_event()")
        for table in REFERENCE_TABLES:
            op.execute(f"DROP TRIGGER trg_{table}_refversion ON {table}")
        op.execute("DROP FUNCTION ydt_bump_reference()")
    else:
        op.execute("DROP TRIGGER trg_complaint_events_pending")
        for table in REFERENCE_TABLES:
            for o in OPS:
                op.execute(f"DROP TRIGGER trg_{table}_refversion_{o}")
    op.drop_table('projector_marks')
    op.drop_table('stats_pending')
    op.drop_table('reference_version')
