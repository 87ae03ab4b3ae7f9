"""Gunshot incidents: the air temperature behind the speed of sound their location used.

With a weather feed (``acoustic.weather_url``) the temperature changes through the day, and a
location depends on it (~0.6 m/s of sound speed per °C). Stored with each incident so that a
location can be explained afterwards: ``temperature_c`` and ``temperature_source`` (``feed`` or
``settings``); null for incidents before this revision.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gunshot_incidents") as batch:
        batch.add_column(sa.Column("temperature_c", sa.Float(), nullable=True))
        batch.add_column(sa.Column("temperature_source", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gunshot_incidents") as batch:
        batch.drop_column("temperature_source")
        batch.drop_column("temperature_c")
