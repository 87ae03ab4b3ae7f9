"""SQLAlchemy tables shared by SQLite and PostgreSQL/PostGIS.

Positions are stored as ``lat``/``lon`` columns in both dialects; on
PostgreSQL the migrations add a generated PostGIS ``geom`` column with a GiST
index, and the repositories use it for "near this point" queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
    false,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect (SQLite keeps naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> datetime:
    return datetime.now(UTC)


class User(Base):
    """A person with a role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The TOTP time step of the last code accepted at login (a code is accepted once, RFC 6238 5.2)."""


class LoginFailure(Base):
    """Failed logins for a username that has no account, counted like an account's.

    Unknown names lock after the same number of failures as real ones, so the
    423 answer does not tell which names exist.
    """

    __tablename__ = "login_failures"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)


class UserSession(Base):
    """A signed-in session; the token itself is never stored, only its SHA-256."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    mfa_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    client: Mapped[str] = mapped_column(String(256), default="")
    mfa_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Whether the person proved a TOTP code for this session (at login or enrolment)."""
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """End of the session however active it is (null for sessions from before revision 0015)."""


class SystemSetting(Base):
    """Runtime switches an admin changes (e.g. ``mfa_required``)."""

    __tablename__ = "system_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)


class Device(Base):
    """A sensor, camera or body cam, with its key (SHA-256 at rest) and health."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    key_prefix: Mapped[str | None] = mapped_column(String(16), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    alt_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    heading_deg: Mapped[float | None] = mapped_column(Float, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class EventRecord(Base):
    """Every validated event, once (the event id makes recording idempotent).

    On PostgreSQL this table is range-partitioned by ``occurred_at`` (one
    partition per day plus a default) and has a PostGIS ``geom`` column.
    """

    __tablename__ = "events"

    event_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(128))
    device_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)

    __table_args__ = (
        Index("ix_events_type_time", "type", "occurred_at"),
        Index("ix_events_device_time", "device_id", "occurred_at"),
    )


class AuditEntry(Base):
    """One link of the tamper-evident audit chain.

    ``hash = HMAC-SHA256(secret, prev_hash || canonical(entry))``; editing,
    inserting or deleting an entry breaks the chain at that point.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    resource: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class GunshotIncidentRow(Base):
    """A located, classified gunshot incident and its review state.

    ``status`` is one of ``alerted`` (confidence at or above the alert
    threshold: the alert went out at once), ``pending_review`` (middle band:
    waiting for a reviewer), ``confirmed`` / ``dismissed`` (a reviewer
    decided, with ``reviewed_by``, ``review_reason`` and ``reviewed_at``) and
    ``below_threshold`` (kept for statistics, no alert). ``pulses`` maps each
    contributing sensor id to the event id of its first pulse (its audio is in the
    event log); ``round_pulses`` maps it to the pulse of each round, in order (null
    for a round it did not hear), and ``round_audio`` to the 1-based rounds whose
    pulse came with audio (both null before revision 0014). On PostgreSQL the
    migration adds a generated PostGIS ``geom``.
    """

    __tablename__ = "gunshot_incidents"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    ellipse_major_m: Mapped[float] = mapped_column(Float)
    ellipse_minor_m: Mapped[float] = mapped_column(Float)
    ellipse_angle_deg: Mapped[float] = mapped_column(Float)
    rounds: Mapped[int] = mapped_column(Integer)
    intervals_s: Mapped[list[float]] = mapped_column(JSONType, default=list)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    multiple_shooters: Mapped[bool] = mapped_column(Boolean, default=False)
    location_quality: Mapped[str] = mapped_column(String(8), default="good", server_default="good")
    temperature_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    temperature_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    label: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    sensors: Mapped[list[str]] = mapped_column(JSONType, default=list)
    pulses: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    round_pulses: Mapped[dict[str, list[str | None]] | None] = mapped_column(JSONType, nullable=True)
    round_audio: Mapped[dict[str, list[int]] | None] = mapped_column(JSONType, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


# Each room's tables live in their own module; importing them here puts them in ``Base.metadata``.
from rtcc.store import (  # noqa: E402
    tables_bodycams,
    tables_cameras,
    tables_hotlists,
    tables_ops,
    tables_plates,
)

_ROOM_TABLES = (tables_plates, tables_hotlists, tables_cameras, tables_bodycams, tables_ops)
