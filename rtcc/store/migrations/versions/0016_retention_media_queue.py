"""Crash-safe media deletion for retention; per-client count of unverified camera registrations.

``media_deletions`` lists the media files (by ref) a retention purge freed. The purge writes it in
the transaction that deletes the rows, and the run removes an entry once its file is gone, so a
crash between the commit and the file deletion leaves the list behind for the next run instead of
files on disk that no row names any more.

``cameras.register_client`` keeps a keyed hash (HMAC with the secret key, never the address
itself) of the client IP an unverified community registration came from, so the per-email quota
(``cameras.register_per_contact``) counts the unverified registrations of that client only: a
stranger can no longer lock a resident's email out by registering cameras in its name. It is
cleared when the contact is verified.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they are at this revision (not imported from the models).
UTC_TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "media_deletions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
        sa.Column("queued_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media_deletions"),
    )
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("register_client", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("register_client")
    op.drop_table("media_deletions")
