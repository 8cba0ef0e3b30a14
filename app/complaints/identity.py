"""Who filed a case: kept so that a database dump cannot tell, and every staff
read of a protected filer's identity recorded in the case's chain.

A *protected* case is an accusation or an anonymous filing
(``Complaint.identity_protected``). Its row holds no citizen id, name or phone
in the clear: they are sealed together (``identity_sealed``,
envelope encryption, ``app/core/crypto.py``), and the two lookups that need
them go through keyed blind indexes written on protected rows only:

* ``owner_index``: the resident's own cases, ownership checks (detail,
  rating, supplements);
* ``phone_index``: staff who may see identity searching by phone.

A blind index is never written beside the plain value it indexes (an
ordinary case keeps its plain columns and no index), or a dump could pair
the two and read every protected row with the same index.

Ordinary cases keep their contact in the clear as before: the department
that handles them calls the resident back. Both kinds carry an
``identity_commitment`` (keyed, per case) that the filing event also
carries, so an audit can check the row against its history.

The resident's openid follows from the citizen and is not sealed with a case
filed since 2026-12-06 (the filing then needs nothing of the resident but the
id its token carries); cases filed before carry it sealed, and delivery reads
it from either (app/notifications/delivery.py).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.complaints import events
from app.core import chain, crypto, keys
from app.core.errors import ServiceUnavailable
from app.models import Complaint, StaffUser, SupervisionUnit
from app.models.enums import StaffRole, UnitKind

OWNER = "complaint-owner"
PHONE = "complaint-phone"
COMMITMENT = "complaint-identity"
VIEWED = "identity_viewed"


@dataclass(frozen=True, slots=True)
class Identity:
    citizen_id: int | None = None
    openid: str | None = None
    name: str | None = None
    phone: str | None = None
    reporter_name: str | None = None

    @property
    def display_name(self) -> str | None:
        return self.name or self.reporter_name


def normalize_phone(phone: str) -> str:
    """One form per number, so the same phone always gives the same index."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def owner_index(citizen_id: int) -> str:
    return crypto.blind(keys.current(), OWNER, str(citizen_id))


def limit_key(citizen_id: int) -> str:
    """The resident's name in shared rate-limit keys: a counter row written at
    filing time must not say which resident just filed."""
    return crypto.blind(keys.current(), "rate-limit-citizen", str(citizen_id))[:32]


def phone_index(phone: str) -> str:
    return crypto.blind(keys.current(), PHONE, normalize_phone(phone))


def commitment(complaint_id: str, ident: Identity) -> str:
    """Keyed, and per case: it binds the contact fields without revealing or
    linking them (the openid follows from the citizen and is left out)."""
    fields = {
        "complaint_id": complaint_id,
        "citizen_id": ident.citizen_id,
        "name": ident.name,
        "phone": ident.phone,
        "reporter_name": ident.reporter_name,
    }
    return crypto.commit(keys.current(), COMMITMENT, chain.canonical(fields))


def _aad(complaint_id: str) -> str:
    return f"complaint:{complaint_id}:identity"


def store(c: Complaint, ident: Identity) -> None:
    """Write a new case's identity: sealed on a protected case, plain otherwise."""
    c.identity_commitment = commitment(c.id, ident)
    if c.identity_protected:
        c.citizen_id, c.contact_name, c.contact_phone, c.reporter_name = None, None, None, None
        c.identity_sealed = crypto.seal_json(keys.current(), asdict(ident), aad=_aad(c.id))
        c.owner_index = owner_index(ident.citizen_id) if ident.citizen_id is not None else None
        c.phone_index = phone_index(ident.phone) if ident.phone else None
    else:
        c.citizen_id, c.contact_name = ident.citizen_id, ident.name
        c.contact_phone, c.reporter_name = ident.phone, ident.reporter_name
        c.identity_sealed = c.owner_index = c.phone_index = None


class FiledCase(Protocol):
    """The columns that say who filed a case: a ``Complaint`` or the resident
    view's plain record (``repository.CaseView``)."""

    @property
    def id(self) -> str: ...
    @property
    def citizen_id(self) -> int | None: ...
    @property
    def owner_index(self) -> str | None: ...
    @property
    def contact_name(self) -> str | None: ...
    @property
    def contact_phone(self) -> str | None: ...
    @property
    def reporter_name(self) -> str | None: ...
    @property
    def identity_sealed(self) -> str | None: ...


def of(c: FiledCase) -> Identity:
    """The filer, whichever way the row keeps it. A sealed identity that does not
    open (a key missing from this process) is a 503, never a silent blank."""
    if c.identity_sealed is None:
        return Identity(
            citizen_id=c.citizen_id,
            name=c.contact_name,
            phone=c.contact_phone,
            reporter_name=c.reporter_name,
        )
    try:
        return Identity(**crypto.unseal_json(keys.current(), c.identity_sealed, aad=_aad(c.id)))
    except (crypto.SealBroken, crypto.KeyUnavailable) as exc:
        raise ServiceUnavailable("反映人信息暂时无法读取，请联系系统管理员") from exc


def has_citizen(c: FiledCase) -> bool:
    """A resident filed it (not staff on someone's behalf without an account)."""
    return c.citizen_id is not None or c.owner_index is not None


def owned_by(c: FiledCase, citizen_id: int) -> bool:
    if c.citizen_id is not None:
        return c.citizen_id == citizen_id
    return c.owner_index is not None and hmac.compare_digest(c.owner_index, owner_index(citizen_id))


def owned_condition(citizen_id: int) -> ColumnElement[bool]:
    """SQL for "filed by this resident", either way the row keeps it."""
    return or_(Complaint.citizen_id == citizen_id, Complaint.owner_index == owner_index(citizen_id))


def phone_condition(phone: str) -> ColumnElement[bool]:
    number = normalize_phone(phone)
    if not number:
        return false()
    return or_(Complaint.contact_phone == number, Complaint.phone_index == phone_index(number))


def visible_condition(user: StaffUser) -> ColumnElement[bool]:
    """SQL twin of ``workflow.scope.sees_identity``: the cases whose filer this
    role may see (searching by phone must not find the others)."""
    conditions = [Complaint.anonymous.is_(False)]
    if user.role is StaffRole.handler:
        conditions.append(Complaint.accusation.is_(False))
    return and_(*conditions)


async def sees_reads(session: AsyncSession, user: StaffUser) -> bool:
    """Who may see the record of identity reads: the commission (纪委监委) and
    administrators. The unit that handles the case does not see who looked."""
    if user.role is StaffRole.admin:
        return True
    if user.unit_id is None:
        return False
    kind = (
        await session.execute(
            select(SupervisionUnit.kind).where(SupervisionUnit.id == user.unit_id)
        )
    ).scalar_one_or_none()
    return kind is UnitKind.commission


async def record_read(
    session: AsyncSession, user: StaffUser, c: Complaint, *, via: str, at: datetime
) -> None:
    """Append the internal event "this staff member read the filer's identity".

    Called before the identity is returned, in the same transaction: if the
    record cannot be written, the read fails too. A concurrent append to the
    same chain is retried on a fresh tail (a savepoint keeps the request's
    other work), so a read never loses to an action.
    """
    for attempt in range(3):
        try:
            async with session.begin_nested():
                await events.append(
                    session,
                    c,
                    kind=VIEWED,
                    public=False,
                    actor_kind="staff",
                    actor_id=user.id,
                    at=at,
                    data={"via": via},
                )
            return
        except chain.ChainConflict:
            if attempt == 2:
                raise
