"""identity at rest: encrypted contact, blind indexes, keyed chain commitments

Schema: sealed identity, blind indexes and the identity commitment on
complaints; the chain format version (and the actor commitment) on case and
disclosure events; citizens' openid/unionid replaced by blind indexes and a
sealed openid; the links that may now be empty (rating's citizen, notice's
recipient, an attached upload's owner).

Data, in this migration, with the keys of the settings it runs under
(``ydt migrate`` reads the same YDT_* settings as the service; the embedded
default generates them under ./var/keys). The keys are loaded only when
there are rows to convert, so a fresh database needs none:

* every citizen's openid/unionid → blind index + sealed openid;
* every protected case (accusation or anonymous): citizen id, openid, name
  and phone sealed, plain columns emptied, blind indexes written; its
  ratings, notices and attached uploads lose their plain citizen link;
* every case: its identity commitment;
* idempotency records and the per-resident rate-limit counters are dropped:
  their owners and answers name residents in the clear and cannot be
  re-keyed without the request bodies (a retry across the upgrade counts as
  a new request);
* events are not touched: format 1 rows keep their hashes and still verify.
  (Their actor_id stays too: the legacy hash covers it. Only a re-chain could
  remove it, and a chain is never rewritten.)

On SQLite, citizens is rebuilt (batch mode) while other tables refer to it:
migrations/env.py runs SQLite migrations with foreign keys off and checks
them (PRAGMA foreign_key_check) before committing.

The derivations below are frozen copies of app/complaints/identity.py and
app/models/citizen.py as of this revision (tests/identity check they agree).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 18:10:00+00:00
"""

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import app.core.db  # noqa: F401

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
OLD_MEDIA_CHECK = '(owner_citizen_id IS NULL) <> (owner_staff_id IS NULL)'
NEW_MEDIA_CHECK = (
    '(owner_citizen_id IS NULL OR owner_staff_id IS NULL) AND '
    '(owner_citizen_id IS NOT NULL OR owner_staff_id IS NOT NULL OR attached_to IS NOT NULL)'
)
PROTECTED = sa.text('(anonymous OR accusation)')

citizens = sa.table(
    'citizens',
    sa.column('id', sa.Integer),
    sa.column('openid', sa.String),
    sa.column('unionid', sa.String),
    sa.column('openid_index', sa.String),
    sa.column('openid_sealed', sa.Text),
    sa.column('unionid_index', sa.String),
)
complaints = sa.table(
    'complaints',
    sa.column('id', sa.String),
    sa.column('anonymous', sa.Boolean),
    sa.column('accusation', sa.Boolean),
    sa.column('citizen_id', sa.Integer),
    sa.column('contact_name', sa.String),
    sa.column('contact_phone', sa.String),
    sa.column('reporter_name', sa.String),
    sa.column('identity_sealed', sa.Text),
    sa.column('owner_index', sa.String),
    sa.column('phone_index', sa.String),
    sa.column('identity_commitment', sa.String),
)
ratings = sa.table(
    'ratings', sa.column('complaint_id', sa.String), sa.column('citizen_id', sa.Integer)
)
notifications = sa.table(
    'notifications',
    sa.column('complaint_id', sa.String),
    sa.column('recipient_kind', sa.String),
    sa.column('recipient_id', sa.Integer),
)
media = sa.table(
    'media',
    sa.column('attached_to', sa.String),
    sa.column('owner_citizen_id', sa.Integer),
    sa.column('owner_staff_id', sa.Integer),
)


def _keyring() -> Any:
    from app.core import keys

    return keys.current()


def _phone(phone: str) -> str:
    digits = re.sub(r'\D', '', phone)
    return digits[2:] if len(digits) == 13 and digits.startswith('86') else digits


def _commitment(kr: Any, cid: str, ident: dict[str, Any]) -> str:
    from app.core import crypto
    from app.core.chain import canonical

    fields = {
        'complaint_id': cid,
        'citizen_id': ident['citizen_id'],
        'name': ident['name'],
        'phone': ident['phone'],
        'reporter_name': ident['reporter_name'],
    }
    return str(crypto.commit(kr, 'complaint-identity', canonical(fields)))


def _restore_queue_indexes() -> None:
    """SQLite's batch mode may rebuild complaints from reflection, which cannot
    see expression indexes (0008): put them back."""
    if op.get_bind().dialect.name != 'sqlite':
        return
    for name, where in (
        ('ix_complaints_queue_open', "status NOT IN ('closed', 'rejected')"),
        ('ix_complaints_queue_done', "status IN ('closed', 'rejected')"),
    ):
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON complaints ((-priority), due_at, id) WHERE {where}')


def _batches(stmt: Any, key: Any) -> Any:
    """Rows of ``stmt`` in key order, a batch at a time (the key must be unique)."""
    bind = op.get_bind()
    last = None
    while True:
        page = stmt if last is None else stmt.where(key > last)
        rows = bind.execute(page.order_by(key).limit(BATCH)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_sealed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('owner_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('identity_commitment', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_complaints_owner_created', ['owner_index', 'created_at'], unique=False)
        batch_op.create_index('ix_complaints_phone_index', ['phone_index'], unique=False)
    _restore_queue_indexes()
    with op.batch_alter_table('complaint_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_commitment', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash_version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('disclosure_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hash_version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('recipient_id', existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.alter_column('citizen_id', existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('openid_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('openid_sealed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('unionid_index', sa.String(length=64), nullable=True))

    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_media_exactly_one_owner'), type_='check')
        batch_op.create_check_constraint('one_owner', NEW_MEDIA_CHECK)

    _seal_citizens()
    _seal_cases()
    op.execute('DELETE FROM idempotency_records')
    op.execute("DELETE FROM shared_state WHERE key LIKE 'file:citizen:%'")

    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.alter_column('openid_index', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('openid_sealed', existing_type=sa.Text(), nullable=False)
        batch_op.drop_constraint(op.f('uq_citizens_openid'), type_='unique')
        batch_op.drop_constraint(op.f('uq_citizens_unionid'), type_='unique')
        batch_op.drop_column('openid')
        batch_op.drop_column('unionid')
        batch_op.create_unique_constraint(op.f('uq_citizens_openid_index'), ['openid_index'])
        batch_op.create_unique_constraint(op.f('uq_citizens_unionid_index'), ['unionid_index'])


def _seal_citizens() -> None:
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(citizens)).scalar_one() == 0:
        return
    from app.core import crypto

    kr = _keyring()
    stmt = sa.select(citizens.c.id, citizens.c.openid, citizens.c.unionid)
    for cid, openid, unionid in _batches(stmt, citizens.c.id):
        index = crypto.blind(kr, 'citizen-openid', openid)
        bind.execute(
            citizens.update()
            .where(citizens.c.id == cid)
            .values(
                openid_index=index,
                openid_sealed=crypto.seal(kr, openid.encode(), aad=f'citizen-openid:{index}'),
                unionid_index=crypto.blind(kr, 'citizen-unionid', unionid) if unionid else None,
            )
        )


def _seal_cases() -> None:
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(complaints)).scalar_one() == 0:
        return
    from app.core import crypto

    kr = _keyring()
    c = complaints.c
    stmt = (
        sa.select(
            c.id, c.anonymous, c.accusation, c.citizen_id, c.contact_name, c.contact_phone,
            c.reporter_name, citizens.c.openid,
        )
        .select_from(complaints.outerjoin(citizens, citizens.c.id == c.citizen_id))
    )
    for cid, anonymous, accusation, citizen_id, name, phone, reporter, openid in _batches(
        stmt, c.id
    ):
        ident = {
            'citizen_id': citizen_id,
            'openid': openid,
            'name': name,
            'phone': phone,
            'reporter_name': reporter,
        }
        values: dict[str, Any] = {'identity_commitment': _commitment(kr, cid, ident)}
        if anonymous or accusation:
            values.update(
                citizen_id=None,
                contact_name=None,
                contact_phone=None,
                reporter_name=None,
                identity_sealed=crypto.seal_json(kr, ident, aad=f'complaint:{cid}:identity'),
                owner_index=(
                    crypto.blind(kr, 'complaint-owner', str(citizen_id))
                    if citizen_id is not None
                    else None
                ),
                phone_index=crypto.blind(kr, 'complaint-phone', _phone(phone)) if phone else None,
            )
        bind.execute(complaints.update().where(c.id == cid).values(**values))
    protected = sa.select(c.id).where(PROTECTED).scalar_subquery()
    bind.execute(ratings.update().where(ratings.c.complaint_id.in_(protected)).values(citizen_id=None))
    bind.execute(
        notifications.update()
        .where(
            notifications.c.complaint_id.in_(protected),
            notifications.c.recipient_kind == 'citizen',
        )
        .values(recipient_id=None)
    )
    tags = sa.select(sa.literal('complaint:') + c.id).where(PROTECTED).scalar_subquery()
    bind.execute(media.update().where(media.c.attached_to.in_(tags)).values(owner_citizen_id=None))


def downgrade() -> None:
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('openid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('unionid', sa.String(length=64), nullable=True))
    _unseal()
    with op.batch_alter_table('citizens', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_citizens_unionid_index'), type_='unique')
        batch_op.drop_constraint(op.f('uq_citizens_openid_index'), type_='unique')
        batch_op.drop_column('unionid_index')
        batch_op.drop_column('openid_sealed')
        batch_op.drop_column('openid_index')
        batch_op.alter_column('openid', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f('uq_citizens_openid'), ['openid'])
        batch_op.create_unique_constraint(op.f('uq_citizens_unionid'), ['unionid'])
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_media_one_owner'), type_='check')
        batch_op.create_check_constraint('exactly_one_owner', OLD_MEDIA_CHECK)
    op.execute('DELETE FROM notifications WHERE recipient_id IS NULL')
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.alter_column('citizen_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('recipient_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('disclosure_events', schema=None) as batch_op:
        batch_op.drop_column('hash_version')
    with op.batch_alter_table('complaint_events', schema=None) as batch_op:
        batch_op.drop_column('hash_version')
        batch_op.drop_column('actor_commitment')
    with op.batch_alter_table('complaints', schema=None) as batch_op:
        batch_op.drop_index('ix_complaints_phone_index')
        batch_op.drop_index('ix_complaints_owner_created')
        batch_op.drop_column('identity_commitment')
        batch_op.drop_column('phone_index')
        batch_op.drop_column('owner_index')
        batch_op.drop_column('identity_sealed')
    _restore_queue_indexes()


def _unseal() -> None:
    """Back to the clear (downgrade): needs the keys the rows were sealed with."""
    bind = op.get_bind()
    has_citizens = bind.execute(sa.select(sa.func.count()).select_from(citizens)).scalar_one()
    sealed_cases = bind.execute(
        sa.select(sa.func.count()).select_from(complaints).where(complaints.c.identity_sealed.is_not(None))
    ).scalar_one()
    if not has_citizens and not sealed_cases:
        return
    from app.core import crypto

    kr = _keyring()
    stmt = sa.select(citizens.c.id, citizens.c.openid_index, citizens.c.openid_sealed)
    for cid, index, sealed in _batches(stmt, citizens.c.id):
        openid = crypto.unseal(kr, sealed, aad=f'citizen-openid:{index}').decode()
        bind.execute(citizens.update().where(citizens.c.id == cid).values(openid=openid))
    c = complaints.c
    stmt = sa.select(c.id, c.identity_sealed).where(c.identity_sealed.is_not(None))
    for cid, sealed in _batches(stmt, c.id):
        ident = crypto.unseal_json(kr, sealed, aad=f'complaint:{cid}:identity')
        owner = ident.get('citizen_id')
        bind.execute(
            complaints.update()
            .where(c.id == cid)
            .values(
                citizen_id=owner,
                contact_name=ident.get('name'),
                contact_phone=ident.get('phone'),
                reporter_name=ident.get('reporter_name'),
            )
        )
        if owner is None:
            continue
        bind.execute(ratings.update().where(ratings.c.complaint_id == cid).values(citizen_id=owner))
        bind.execute(
            notifications.update()
            .where(
                notifications.c.complaint_id == cid,
                notifications.c.recipient_kind == 'citizen',
                notifications.c.recipient_id.is_(None),
            )
            .values(recipient_id=owner)
        )
        bind.execute(
            media.update()
            .where(
                media.c.attached_to == f'complaint:{cid}',
                media.c.owner_citizen_id.is_(None),
                media.c.owner_staff_id.is_(None),
            )
            .values(owner_citizen_id=owner)
        )
