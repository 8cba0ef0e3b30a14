"""Every ORM model, imported here so Alembic and the app see one metadata."""

from app.models.audit import AuditCheckpoint, AuditHead
from app.models.citizen import Citizen, SharedState
from app.models.complaint import (
    Complaint,
    ComplaintEvent,
    Notification,
    SupervisionOrder,
    TrackingCounter,
)
from app.models.disclosure import Disclosure, DisclosureEvent
from app.models.duplicate import ComplaintFollow, ComplaintMerge
from app.models.feedback import Callback, CallbackDraw, Rating
from app.models.integrator import IntegratorKey, Open311Token
from app.models.media import IdempotencyRecord, Media
from app.models.moderation import ContentCheck
from app.models.projection import ProjectorMark, ReferenceVersion, StatsPending
from app.models.reference import (
    Category,
    Department,
    Item,
    Region,
    ResidentGroup,
    SupervisionUnit,
    TaxonomyVersion,
)
from app.models.routing import CalendarDay, DesignatedCadre, RoutingOverride
from app.models.session import AuthSession, SessionKind, SessionSubject
from app.models.staff import LoginOutcome, StaffLoginAttempt, StaffUser
from app.models.stats import (
    StatsCityItemMonth,
    StatsDaily,
    StatsItemMonth,
    StatsOpenDue,
    StatsRecentCluster,
    StatsRecentWindow,
    StatsSameDay,
    StatsSameDayMark,
    StatsSameDayTown,
    StatsTownDay,
    StatsUnitMonth,
)

__all__ = [
    "AuditCheckpoint",
    "AuditHead",
    "AuthSession",
    "CalendarDay",
    "Callback",
    "CallbackDraw",
    "Category",
    "Citizen",
    "Complaint",
    "ComplaintEvent",
    "ComplaintFollow",
    "ComplaintMerge",
    "ContentCheck",
    "Department",
    "DesignatedCadre",
    "Disclosure",
    "DisclosureEvent",
    "IdempotencyRecord",
    "IntegratorKey",
    "Item",
    "LoginOutcome",
    "Media",
    "Notification",
    "Open311Token",
    "ProjectorMark",
    "Rating",
    "ReferenceVersion",
    "Region",
    "ResidentGroup",
    "RoutingOverride",
    "SessionKind",
    "SessionSubject",
    "SharedState",
    "StaffLoginAttempt",
    "StaffUser",
    "StatsCityItemMonth",
    "StatsDaily",
    "StatsItemMonth",
    "StatsOpenDue",
    "StatsPending",
    "StatsRecentCluster",
    "StatsRecentWindow",
    "StatsSameDay",
    "StatsSameDayMark",
    "StatsSameDayTown",
    "StatsTownDay",
    "StatsUnitMonth",
    "SupervisionOrder",
    "SupervisionUnit",
    "TaxonomyVersion",
    "TrackingCounter",
]
