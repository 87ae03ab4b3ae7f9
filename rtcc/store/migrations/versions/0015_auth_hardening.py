"""Sign-in hardening: one use per TOTP code, absolute session lifetime, MFA-proven sessions,
failed-login counting for unknown usernames.

``users.totp_last_step`` keeps the time step of the last TOTP code accepted at login, so the
same code is refused the second time (RFC 6238 section 5.2). ``sessions.mfa_verified`` says the
session was opened (or completed) with a TOTP code: sessions without it end once MFA is required.
``sessions.expires_at`` is the session's absolute end (null for sessions from before this
revision: the code then counts from ``created_at``). ``login_failures`` counts failed logins for
names without an account, so they lock like real accounts and a 423 does not reveal which exist.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("mfa_verified", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("expires_at", UTC_TIME, nullable=True))
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC_TIME, nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_login_failures"),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("mfa_verified")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
