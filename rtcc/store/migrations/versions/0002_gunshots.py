"""Gunshot incidents and their review queue.

Adds ``gunshot_incidents`` (see :class:`rtcc.store.tables.GunshotIncidentRow`);
on PostgreSQL also a generated PostGIS ``geom`` point column with GiST
indexes (on ``geom`` and on ``geom::geography``), as 0001 does for events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they are at this revision (not imported from the models).
UTC_TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

GEOM_SQL = (
    "geometry(Point, 4326) GENERATED ALWAYS AS (CASE WHEN lat IS NULL OR lon IS NULL "
    "THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END) STORED"
)


def upgrade() -> None:
    op.create_table(
        "gunshot_incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("ellipse_major_m", sa.Float(), nullable=False),
        sa.Column("ellipse_minor_m", sa.Float(), nullable=False),
        sa.Column("ellipse_angle_deg", sa.Float(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("intervals_s", JSON, nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("multiple_shooters", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("sensors", JSON, nullable=False),
        sa.Column("pulses", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("reviewed_at", UTC_TIME, nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gunshot_incidents"),
    )
    op.create_index("ix_gunshot_incidents_occurred_at", "gunshot_incidents", ["occurred_at"])
    op.create_index("ix_gunshot_incidents_status", "gunshot_incidents", ["status"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE gunshot_incidents ADD COLUMN geom {GEOM_SQL}")
        op.execute("CREATE INDEX ix_gunshot_incidents_geom ON gunshot_incidents USING gist (geom)")
        op.execute(
            "CREATE INDEX ix_gunshot_incidents_geog ON gunshot_incidents USING gist ((geom::geography))"
        )


def downgrade() -> None:
    op.drop_index("ix_gunshot_incidents_status", table_name="gunshot_incidents")
    op.drop_index("ix_gunshot_incidents_occurred_at", table_name="gunshot_incidents")
    op.drop_table("gunshot_incidents")  # on PostgreSQL its geom column and GiST indexes go with it
