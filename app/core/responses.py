"""Rendering an AppError without raising it.

Used where the request's transaction must still commit (a failed login must
keep its failure count), since raising rolls the transaction back.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.core.errors import AppError, error_body


def error_response(exc: AppError) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status_code, content=error_body(exc.code, exc.detail), headers=exc.headers
    )
