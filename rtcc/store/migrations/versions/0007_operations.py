"""Alert queue, incident packets, cases, case links, outcomes (issue 5).

Adds ``alerts``, ``packets``, ``cases``, ``case_links`` and ``outcomes`` (see
:mod:`rtcc.store.tables_ops`); on PostgreSQL also generated PostGIS ``geom``
point columns with GiST indexes on ``alerts`` and ``packets``, as 0002 does.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they are at this revision (not imported from the models).
UTC_TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

GEOM_SQL = (
    "geometry(Point, 4326) GENERATED ALWAYS AS (CASE WHEN lat IS NULL OR lon IS NULL "
    "THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END) STORED"
)
SPATIAL = ("alerts", "packets")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("ref_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", UTC_TIME, nullable=True),
        sa.Column("assigned_by", sa.String(64), nullable=True),
        sa.Column("assigned_at", UTC_TIME, nullable=True),
        sa.Column("assigned_unit", sa.String(64), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("closed_at", UTC_TIME, nullable=True),
        sa.Column("dismissed_by", sa.String(64), nullable=True),
        sa.Column("dismissed_at", UTC_TIME, nullable=True),
        sa.Column("dismiss_reason", sa.Text(), nullable=True),
        sa.Column("history", JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("event_id", name="uq_alerts_event_id"),
    )
    op.create_index("ix_alerts_occurred_at", "alerts", ["occurred_at"])
    op.create_index("ix_alerts_kind", "alerts", ["kind"])
    op.create_index("ix_alerts_ref_id", "alerts", ["ref_id"])
    op.create_index("ix_alerts_status", "alerts", ["status"])

    op.create_table(
        "packets",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("built_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_packets"),
        sa.UniqueConstraint("kind", "ref_id", name="uq_packets_kind_ref"),
    )
    op.create_index("ix_packets_occurred_at", "packets", ["occurred_at"])

    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("opened_at", UTC_TIME, nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("closed_at", UTC_TIME, nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("number", name="uq_cases_number"),
    )
    op.create_index("ix_cases_status", "cases", ["status"])

    op.create_table(
        "case_links",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("ref_type", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.String(64), nullable=False),
        sa.Column("linked_by", sa.String(64), nullable=False),
        sa.Column("linked_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_links"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_links_case_id_cases", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("case_id", "ref_type", "ref_id", name="uq_case_links_case_ref"),
    )
    op.create_index("ix_case_links_case_id", "case_links", ["case_id"])
    op.create_index("ix_case_links_ref", "case_links", ["ref_type", "ref_id"])

    op.create_table(
        "outcomes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("ref_type", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outcomes"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_outcomes_case_id_cases", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("case_id", "ref_type", "ref_id", "category", name="uq_outcomes_case_ref_cat"),
    )
    op.create_index("ix_outcomes_case_id", "outcomes", ["case_id"])
    op.create_index("ix_outcomes_category", "outcomes", ["category"])
    op.create_index("ix_outcomes_recorded_at", "outcomes", ["recorded_at"])
    op.create_index("ix_outcomes_ref", "outcomes", ["ref_type", "ref_id"])

    if op.get_bind().dialect.name == "postgresql":
        for table in SPATIAL:
            op.execute(f"ALTER TABLE {table} ADD COLUMN geom {GEOM_SQL}")
            op.execute(f"CREATE INDEX ix_{table}_geom ON {table} USING gist (geom)")
            op.execute(f"CREATE INDEX ix_{table}_geog ON {table} USING gist ((geom::geography))")


def downgrade() -> None:
    for table in ("outcomes", "case_links", "cases", "packets", "alerts"):
        op.drop_table(table)  # their indexes (and geom columns on PostgreSQL) go with them
