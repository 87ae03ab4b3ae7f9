"""Plate reads (issue 3).

Adds ``plate_reads`` (see :class:`rtcc.store.tables_plates.PlateReadRow`).

On PostgreSQL: range-partitioned by ``read_at`` (daily partitions for
today-2 … today+7 and ``plate_reads_default``, as ``events``), a generated
PostGIS ``geom`` column with GiST indexes, and a ``pg_trgm`` GIN index on
``plate`` for partial-plate search.

On SQLite: an FTS5 ``trigram`` index ``plate_reads_fts`` over ``plate``
(external content ``plate_reads``, rowid-linked). New rows are indexed by
:func:`rtcc.plates.reads.insert_reads` in one statement per batch (a per-row
trigger cost 2.6x the ingest rate); triggers follow deletes and plate updates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from rtcc.store.partitions import ensure_default_partition, ensure_event_partitions

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they are at this revision (not imported from the models).
UTC_TIME = sa.DateTime(timezone=True)

GEOM_SQL = (
    "geometry(Point, 4326) GENERATED ALWAYS AS (CASE WHEN lat IS NULL OR lon IS NULL "
    "THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END) STORED"
)

SQLITE_FTS = (
    "CREATE VIRTUAL TABLE plate_reads_fts USING fts5("
    "plate, content='plate_reads', content_rowid='rowid', tokenize='trigram', detail='none', columnsize=0)",
    "CREATE TRIGGER plate_reads_fts_ad AFTER DELETE ON plate_reads BEGIN "
    "INSERT INTO plate_reads_fts(plate_reads_fts, rowid, plate) VALUES ('delete', old.rowid, old.plate); END",
    "CREATE TRIGGER plate_reads_fts_au AFTER UPDATE OF plate ON plate_reads BEGIN "
    "INSERT INTO plate_reads_fts(plate_reads_fts, rowid, plate) VALUES ('delete', old.rowid, old.plate); "
    "INSERT INTO plate_reads_fts(rowid, plate) VALUES (new.rowid, new.plate); END",
)


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.create_table(
        "plate_reads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("read_at", UTC_TIME, nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("direction", sa.String(2), nullable=True),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("plate_key", sa.String(16), nullable=False),
        sa.Column("region", sa.String(16), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("crop_ref", sa.String(512), nullable=True),
        sa.Column("image_ref", sa.String(512), nullable=True),
        sa.Column("hit", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", "read_at", name="pk_plate_reads"),
        postgresql_partition_by="RANGE (read_at)",
    )
    op.create_index("ix_plate_reads_read_at", "plate_reads", ["read_at"])
    op.create_index("ix_plate_reads_key_time", "plate_reads", ["plate_key", "read_at"])
    op.create_index("ix_plate_reads_device_time", "plate_reads", ["device_id", "read_at"])
    if pg:
        op.execute(f"ALTER TABLE plate_reads ADD COLUMN geom {GEOM_SQL}")
        op.execute("CREATE INDEX ix_plate_reads_geom ON plate_reads USING gist (geom)")
        op.execute("CREATE INDEX ix_plate_reads_geog ON plate_reads USING gist ((geom::geography))")
        op.execute("CREATE INDEX ix_plate_reads_plate_trgm ON plate_reads USING gin (plate gin_trgm_ops)")
        ensure_default_partition(bind, "plate_reads")
        today = datetime.now(UTC).date()
        ensure_event_partitions(bind, today - timedelta(days=2), 10, "plate_reads")
    elif bind.dialect.name == "sqlite":
        for stmt in SQLITE_FTS:
            op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("plate_reads_fts_au", "plate_reads_fts_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS plate_reads_fts")
    op.drop_index("ix_plate_reads_device_time", table_name="plate_reads")
    op.drop_index("ix_plate_reads_key_time", table_name="plate_reads")
    op.drop_index("ix_plate_reads_read_at", table_name="plate_reads")
    op.drop_table("plate_reads")  # on PostgreSQL its partitions, geom and GiST/GIN indexes go with it
