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

api_router = APIRouter()
api_router.include_router(auth_router)
api_router.include_router(regions_router)
api_router.include_router(taxonomy_router)
api_router.include_router(media_router)
api_router.include_router(duplicates_router)
api_router.include_router(complaints_router)
api_router.include_router(feedback_router)
api_router.include_router(staff_router)
api_router.include_router(routing_router)
api_router.include_router(qrcodes_router)
api_router.include_router(workflow_router)
api_router.include_router(historical_router)
api_router.include_router(stats_router)
api_router.include_router(ledger_router)
api_router.include_router(disclosures_router)
api_router.include_router(moderation_router)
api_router.include_router(integrators_router)
