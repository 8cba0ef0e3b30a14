"""Every ORM model, imported here so Alembic and the app see one metadata."""

from app.models.citizen import Citizen, SharedState
from app.models.complaint import (
    Complaint,
    ComplaintEvent,
    Notification,
    SupervisionOrder,
    TrackingCounter,
)
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

__all__ = [
    "CalendarDay",
    "Category",
    "Citizen",
    "Complaint",
    "ComplaintEvent",
    "Department",
    "DesignatedCadre",
    "IdempotencyRecord",
    "Item",
    "Media",
    "Notification",
    "Region",
    "ResidentGroup",
    "RoutingOverride",
    "SharedState",
    "StaffUser",
    "SupervisionOrder",
    "SupervisionUnit",
    "TaxonomyVersion",
    "TrackingCounter",
]
