"""Tables: cameras, footage requests, withdrawals (issue 4).

* :class:`CameraRow` — one camera of kind ``city``, ``in_car`` or
  ``community``. A community camera's owner contact (name, email, phone) is
  personal data: only admins and supervisors read it, and each read is
  audited. Secrets (verification token and code, the owner's manage token)
  are kept as SHA-256 only. On PostgreSQL the migration adds a generated
  PostGIS ``geom``.
* :class:`FootageRequestRow` — a request for a registered camera's footage of
  a time window, and the clip the owner uploaded (a file under
  ``data_dir/media/footage``).
* :class:`CameraWithdrawalRow` — that a community camera was withdrawn, and
  when (no personal data: the camera's row, contact and clips are deleted).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rtcc.store.tables import Base, BigId, UTCDateTime, _now

__all__ = ["Base", "CameraRow", "CameraWithdrawalRow", "FootageRequestRow"]


class CameraRow(Base):
    """A city, in-car or community camera.

    ``status`` is ``pending_verification`` → ``pending_approval`` →
    ``active`` (or ``rejected``); city and in-car cameras are ``active`` when
    created. ``level`` is ``registered`` (location known, footage on request)
    or ``integrated`` (live feed shared through ``stream_url``). An in-car
    camera has no fixed position: it follows ``device_id``'s heartbeats, and
    its ``bearing_deg`` is relative to the vehicle's heading.
    """

    __tablename__ = "cameras"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    owner_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    contact_email: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    contact_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    bearing_deg: Mapped[float] = mapped_column(Float)
    fov_deg: Mapped[float] = mapped_column(Float)
    range_m: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), index=True)
    stream_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    verify_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    verify_code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verify_attempts: Mapped[int] = mapped_column(Integer, default=0)
    verify_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    register_client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Keyed hash (HMAC with the secret key) of the client IP an unverified registration came from:
    the per-email quota counts unverified registrations per client (cleared at verification)."""
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    manage_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    online: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)


class FootageRequestRow(Base):
    """A request for a registered camera's footage, and the uploaded clip.

    ``status``: ``requested`` → ``notified`` → ``uploaded`` | ``declined`` |
    ``expired``. The owner answers through the link mailed with the request
    (its token is kept as SHA-256 in ``upload_token_hash``) or their manage
    link. The clip lives at ``clip_path`` (relative to the media
    folder) with its size and SHA-256.
    """

    __tablename__ = "footage_requests"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    camera_id: Mapped[UUID] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    incident_ref: Mapped[str] = mapped_column(String(128), index=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(64))
    upload_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    clip_path: Mapped[str | None] = mapped_column(String(300), nullable=True)
    clip_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    clip_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    clip_content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class CameraWithdrawalRow(Base):
    """A community camera was withdrawn by its owner (its data was deleted)."""

    __tablename__ = "camera_withdrawals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    withdrawn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)
    level: Mapped[str] = mapped_column(String(16))
    status_before: Mapped[str] = mapped_column(String(24))
