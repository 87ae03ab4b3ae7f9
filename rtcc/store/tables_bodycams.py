"""Tables: body-cam commands and activation policies (issue 4).

* ``bodycam_commands`` — one row per command (remote or automatic) with its
  delivery attempts and its state: ``sent`` → ``acked`` | ``failed`` |
  ``timeout`` | ``cancelled`` (the device was revoked). An automatic command
  names its trigger (``trigger_ref``, e.g. ``gunshot_incident:<id>``);
  ``(device_id, trigger_ref)`` is unique, so a unit is commanded once per
  incident however often the event is delivered.
* ``bodycam_policy`` — the automatic activation policy (one row, id 1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rtcc.store.tables import Base, JSONType, UTCDateTime, _now

__all__ = ["Base", "BodycamCommand", "BodycamPolicy"]


class BodycamCommand(Base):
    """A start/stop recording command to one body cam, and what became of it."""

    __tablename__ = "bodycam_commands"
    __table_args__ = (
        UniqueConstraint("device_id", "trigger_ref", name="uq_bodycam_commands_device_trigger"),
        Index("ix_bodycam_commands_status_deadline", "status", "deadline_at"),
        Index("ix_bodycam_commands_device_status", "device_id", "status"),
    )

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128))
    command: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    issued_by: Mapped[str] = mapped_column(String(64))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    trigger_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    nonce: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="sent")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ack_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class BodycamPolicy(Base):
    """The automatic activation policy (a single row, ``id = 1``)."""

    __tablename__ = "bodycam_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    triggers: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    radius_m: Mapped[float] = mapped_column(Float, default=300.0)
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
