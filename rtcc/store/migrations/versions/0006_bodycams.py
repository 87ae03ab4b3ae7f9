"""Body-cam commands and activation policies (issue 4).

Adds ``bodycam_commands`` and ``bodycam_policy`` (see
:mod:`rtcc.store.tables_bodycams`). Neither has a position: a unit's position
is its body cam's row in ``devices``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they are at this revision (not imported from the models).
UTC_TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bodycam_commands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("issued_by", sa.String(64), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("trigger_ref", sa.String(128), nullable=True),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=False),
        sa.Column("deadline_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("acked_at", UTC_TIME, nullable=True),
        sa.Column("ack_detail", sa.Text(), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bodycam_commands"),
        sa.UniqueConstraint("device_id", "trigger_ref", name="uq_bodycam_commands_device_trigger"),
    )
    op.create_index("ix_bodycam_commands_created_at", "bodycam_commands", ["created_at"])
    op.create_index("ix_bodycam_commands_status_deadline", "bodycam_commands", ["status", "deadline_at"])
    op.create_index("ix_bodycam_commands_device_status", "bodycam_commands", ["device_id", "status"])
    op.create_table(
        "bodycam_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("triggers", JSON, nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bodycam_policy"),
    )


def downgrade() -> None:
    op.drop_table("bodycam_policy")
    op.drop_index("ix_bodycam_commands_device_status", table_name="bodycam_commands")
    op.drop_index("ix_bodycam_commands_status_deadline", table_name="bodycam_commands")
    op.drop_index("ix_bodycam_commands_created_at", table_name="bodycam_commands")
    op.drop_table("bodycam_commands")
