"""Gunshot incidents: each sensor's pulse per round, and which of them came with audio.

``pulses`` keeps one pulse per sensor (its first round's), so a reviewer could play only the first
round of a burst. ``round_pulses`` maps each contributing sensor to its pulse of every round, in
order (null for a round it did not hear), and ``round_audio`` to the 1-based rounds whose pulse
came with audio (what the packet offers to play). Both are null for incidents before this
revision: the API then treats ``pulses`` as round 1 of each sensor.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("gunshot_incidents") as batch:
        batch.add_column(sa.Column("round_pulses", JSON, nullable=True))
        batch.add_column(sa.Column("round_audio", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gunshot_incidents") as batch:
        batch.drop_column("round_audio")
        batch.drop_column("round_pulses")
