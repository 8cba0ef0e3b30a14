"""resident access: query codes for offline intake, historical cases, pending notices

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 18:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import app.core.db  # noqa: F401

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # placeholder: resident access (issue 15)
    pass


def downgrade() -> None:
    pass
