"""Hotlists, entries and hits; the plate-search ledger and retention runs (issue 3).

Adds ``hotlist_sources``, ``hotlist_entries``, ``hotlist_state`` (one row,
version 0), ``hotlist_hits``, ``plate_searches`` and ``retention_runs`` (see
:mod:`rtcc.store.tables_hotlists`); on PostgreSQL ``hotlist_hits`` also gets a
generated PostGIS ``geom`` point column with GiST indexes, as 0002 does.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
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


def upgrade() -> None:
    op.create_table(
        "hotlist_sources",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("imported_at", UTC_TIME, nullable=False),
        sa.Column("imported_by", sa.String(128), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_hotlist_sources"),
    )
    op.create_table(
        "hotlist_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("state", sa.String(4), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("extra", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hotlist_entries"),
    )
    op.create_index("ix_hotlist_entries_source", "hotlist_entries", ["source"])
    op.create_index("ix_hotlist_entries_plate", "hotlist_entries", ["plate"])
    op.create_table(
        "hotlist_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", BIG_ID, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hotlist_state"),
    )
    op.create_table(
        "hotlist_hits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("read_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("read_at", UTC_TIME, nullable=False),
        sa.Column("device", sa.String(128), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("image_ref", sa.String(512), nullable=True),
        sa.Column("crop_ref", sa.String(512), nullable=True),
        sa.Column("match", sa.String(16), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("entry_plate", sa.String(16), nullable=False),
        sa.Column("entry_source", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hotlist_hits"),
        sa.UniqueConstraint("read_id", "entry_id", name="uq_hotlist_hits_read_entry"),
    )
    op.create_index("ix_hotlist_hits_read_id", "hotlist_hits", ["read_id"])
    op.create_index("ix_hotlist_hits_read_at", "hotlist_hits", ["read_at"])
    op.create_index("ix_hotlist_hits_status", "hotlist_hits", ["status"])
    op.create_table(
        "plate_searches",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("purpose_category", sa.String(32), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("case_number", sa.String(64), nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plate_searches"),
    )
    op.create_index("ix_plate_searches_at", "plate_searches", ["at"])
    op.create_index("ix_plate_searches_case_number", "plate_searches", ["case_number"])
    op.create_table(
        "retention_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("plate_reads_days", sa.Integer(), nullable=False),
        sa.Column("cutoff", UTC_TIME, nullable=False),
        sa.Column("reads_deleted", sa.Integer(), nullable=False),
        sa.Column("media_deleted", sa.Integer(), nullable=False),
        sa.Column("kept_for_hits", sa.Integer(), nullable=False),
        sa.Column("kept_for_cases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_runs"),
    )
    op.create_index("ix_retention_runs_started_at", "retention_runs", ["started_at"])
    op.execute("INSERT INTO hotlist_state (id, version, updated_at) VALUES (1, 0, CURRENT_TIMESTAMP)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE hotlist_hits ADD COLUMN geom {GEOM_SQL}")
        op.execute("CREATE INDEX ix_hotlist_hits_geom ON hotlist_hits USING gist (geom)")
        op.execute("CREATE INDEX ix_hotlist_hits_geog ON hotlist_hits USING gist ((geom::geography))")


def downgrade() -> None:
    op.drop_index("ix_retention_runs_started_at", table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_index("ix_plate_searches_case_number", table_name="plate_searches")
    op.drop_index("ix_plate_searches_at", table_name="plate_searches")
    op.drop_table("plate_searches")
    op.drop_index("ix_hotlist_hits_status", table_name="hotlist_hits")
    op.drop_index("ix_hotlist_hits_read_at", table_name="hotlist_hits")
    op.drop_index("ix_hotlist_hits_read_id", table_name="hotlist_hits")
    op.drop_table("hotlist_hits")  # on PostgreSQL its geom column and GiST indexes go with it
    op.drop_table("hotlist_state")
    op.drop_index("ix_hotlist_entries_plate", table_name="hotlist_entries")
    op.drop_index("ix_hotlist_entries_source", table_name="hotlist_entries")
    op.drop_table("hotlist_entries")
    op.drop_table("hotlist_sources")
