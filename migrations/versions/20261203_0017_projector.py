"""projector: high-water marks and city item-month rollups

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 18:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import app.core.db  # noqa: F401

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # placeholder: projector
    pass


def downgrade() -> None:
    pass
