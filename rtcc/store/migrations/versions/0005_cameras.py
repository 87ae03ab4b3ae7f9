"""Cameras, community registrations, footage requests (issue 4).

Adds ``cameras``, ``footage_requests`` and ``camera_withdrawals`` (see
:mod:`rtcc.store.tables_cameras`); on PostgreSQL also a generated PostGIS
``geom`` point column on ``cameras`` with GiST indexes, as 0002 does.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they are at this revision (not imported from the models).
UTC_TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

GEOM_SQL = (
    "geometry(Point, 4326) GENERATED ALWAYS AS (CASE WHEN lat IS NULL OR lon IS NULL "
    "THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END) STORED"
)


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner_type", sa.String(16), nullable=True),
        sa.Column("owner_name", sa.String(200), nullable=True),
        sa.Column("contact_email", sa.String(254), nullable=True),
        sa.Column("contact_phone", sa.String(32), nullable=True),
        sa.Column("address", sa.String(300), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("bearing_deg", sa.Float(), nullable=False),
        sa.Column("fov_deg", sa.Float(), nullable=False),
        sa.Column("range_m", sa.Float(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("stream_url", sa.String(1000), nullable=True),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.Column("verify_token_hash", sa.String(64), nullable=True),
        sa.Column("verify_code_hash", sa.String(64), nullable=True),
        sa.Column("verify_attempts", sa.Integer(), nullable=False),
        sa.Column("verify_expires_at", UTC_TIME, nullable=True),
        sa.Column("verified_at", UTC_TIME, nullable=True),
        sa.Column("manage_token_hash", sa.String(64), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("last_probe_at", UTC_TIME, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cameras"),
        sa.UniqueConstraint("verify_token_hash", name="uq_cameras_verify_token_hash"),
        sa.UniqueConstraint("manage_token_hash", name="uq_cameras_manage_token_hash"),
    )
    op.create_index("ix_cameras_kind", "cameras", ["kind"])
    op.create_index("ix_cameras_status", "cameras", ["status"])
    op.create_index("ix_cameras_contact_email", "cameras", ["contact_email"])
    op.create_index("ix_cameras_device_id", "cameras", ["device_id"])
    op.create_table(
        "footage_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("camera_id", sa.Uuid(), nullable=False),
        sa.Column("incident_ref", sa.String(128), nullable=False),
        sa.Column("window_start", UTC_TIME, nullable=False),
        sa.Column("window_end", UTC_TIME, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("upload_token_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("notified_at", UTC_TIME, nullable=True),
        sa.Column("responded_at", UTC_TIME, nullable=True),
        sa.Column("owner_note", sa.Text(), nullable=True),
        sa.Column("clip_path", sa.String(300), nullable=True),
        sa.Column("clip_bytes", sa.BigInteger(), nullable=True),
        sa.Column("clip_sha256", sa.String(64), nullable=True),
        sa.Column("clip_content_type", sa.String(100), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name="fk_footage_requests_camera_id_cameras",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_footage_requests"),
        sa.UniqueConstraint("upload_token_hash", name="uq_footage_requests_upload_token_hash"),
    )
    op.create_index("ix_footage_requests_camera_id", "footage_requests", ["camera_id"])
    op.create_index("ix_footage_requests_incident_ref", "footage_requests", ["incident_ref"])
    op.create_index("ix_footage_requests_status", "footage_requests", ["status"])
    op.create_table(
        "camera_withdrawals",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("withdrawn_at", UTC_TIME, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("status_before", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_camera_withdrawals"),
    )
    op.create_index("ix_camera_withdrawals_withdrawn_at", "camera_withdrawals", ["withdrawn_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE cameras ADD COLUMN geom {GEOM_SQL}")
        op.execute("CREATE INDEX ix_cameras_geom ON cameras USING gist (geom)")
        op.execute("CREATE INDEX ix_cameras_geog ON cameras USING gist ((geom::geography))")


def downgrade() -> None:
    op.drop_index("ix_camera_withdrawals_withdrawn_at", table_name="camera_withdrawals")
    op.drop_table("camera_withdrawals")
    op.drop_index("ix_footage_requests_status", table_name="footage_requests")
    op.drop_index("ix_footage_requests_incident_ref", table_name="footage_requests")
    op.drop_index("ix_footage_requests_camera_id", table_name="footage_requests")
    op.drop_table("footage_requests")
    op.drop_index("ix_cameras_device_id", table_name="cameras")
    op.drop_index("ix_cameras_contact_email", table_name="cameras")
    op.drop_index("ix_cameras_status", table_name="cameras")
    op.drop_index("ix_cameras_kind", table_name="cameras")
    op.drop_table("cameras")  # on PostgreSQL its geom column and GiST indexes go with it
