"""Gunshot incidents: the quality of the location (issue 6: a quality flag for poor geometry).

The localizer flags a fix whose sensors surround the source poorly (a shot outside the array: the
solution is stretched along the line of sight). Until now the flag reached the located shot only;
the incident, its alert and the dispatch view showed such a fix as sure as any other. Adds
``gunshot_incidents.location_quality`` (``good`` / ``poor``; rows before this revision ``good``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gunshot_incidents") as batch:
        batch.add_column(sa.Column("location_quality", sa.String(8), nullable=False, server_default="good"))


def downgrade() -> None:
    with op.batch_alter_table("gunshot_incidents") as batch:
        batch.drop_column("location_quality")
