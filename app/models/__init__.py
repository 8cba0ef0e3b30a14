"""Every ORM model, imported here so Alembic and the app see one metadata."""

from app.models.citizen import Citizen, SharedState
from app.models.complaint import (
    Complaint,
    ComplaintEvent,
    Notification,
    SupervisionOrder,
    TrackingCounter,
)
from app.models.disclosure import Disclosure, DisclosureEvent
from app.models.feedback import Callback, CallbackDraw, Rating
from app.models.media import IdempotencyRecord, Media
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
from app.models.staff import StaffUser
from app.models.stats import (
    StatsDaily,
    StatsItemMonth,
    StatsOpenDue,
    StatsTownDay,
    StatsUnitMonth,
)

__all__ = [
    "CalendarDay",
    "Callback",
    "CallbackDraw",
    "Category",
    "Citizen",
    "Complaint",
    "ComplaintEvent",
    "Department",
    "DesignatedCadre",
    "Disclosure",
    "DisclosureEvent",
    "IdempotencyRecord",
    "Item",
    "Media",
    "Notification",
    "Rating",
    "Region",
    "ResidentGroup",
    "RoutingOverride",
    "SharedState",
    "StaffUser",
    "StatsDaily",
    "StatsItemMonth",
    "StatsOpenDue",
    "StatsTownDay",
    "StatsUnitMonth",
    "SupervisionOrder",
    "SupervisionUnit",
    "TaxonomyVersion",
    "TrackingCounter",
]
