"""All /api/v1 routers, in one place so the OpenAPI document has a stable order."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.router import router as auth_router
from app.complaints.router import router as complaints_router
from app.disclosures.router import router as disclosures_router
from app.duplicates.router import router as duplicates_router
from app.feedback.router import router as feedback_router
from app.historical.router import router as historical_router
from app.ledger.router import router as ledger_router
from app.media.router import router as media_router
from app.moderation.router import router as moderation_router
from app.open311.admin_router import router as integrators_router
from app.qrcodes.router import router as qrcodes_router
from app.regions.router import router as regions_router
from app.routing.router import router as routing_router
from app.staff.router import router as staff_router
from app.stats.router import router as stats_router
from app.taxonomy.router import router as taxonomy_router
from app.workflow.router import router as workflow_router

# Included one by one into the app under /api/v1 (app/main.py), not through
# an intermediate router: FastAPI 0.165 matches an included router lazily, and
# at every nesting level walks its routes for a version and matches the route
# twice (once to choose, once to handle), so one level fewer is about a tenth
# of a resident's read (bench/README.md). The residents' own routes come
# first: the filing and tracking requests are matched before the staff's.
API_ROUTERS: tuple[APIRouter, ...] = (
    complaints_router,
    auth_router,
    regions_router,
    taxonomy_router,
    media_router,
    duplicates_router,
    feedback_router,
    staff_router,
    routing_router,
    qrcodes_router,
    workflow_router,
    historical_router,
    stats_router,
    ledger_router,
    disclosures_router,
    moderation_router,
    integrators_router,
)
