"""All /api/v1 routers, in one place so the OpenAPI document has a stable order."""

from __future__ import annotations

from fastapi import APIRouter

api_router = APIRouter()
