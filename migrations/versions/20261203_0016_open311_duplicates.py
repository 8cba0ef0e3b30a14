"""open311 and duplicates: integrator api keys, merges, follows, suggestion corrections

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 18:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import app.core.db  # noqa: F401

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # placeholder: open311_duplicates
    pass


def downgrade() -> None:
    pass
