"""Tables: alert queue, incident packets, cases, case links and outcomes (issue 5).

* ``alerts`` — every alert once (its ``alert_id``), with its queue state:
  ``new`` → ``acknowledged`` → ``assigned`` → ``closed``, or ``dismissed``
  with a reason; who and when for each step (also in ``history``).
* ``packets`` — the incident packet of a gunshot incident or hotlist hit
  (JSON ``body``), rebuilt live; ``version`` counts rebuilds.
* ``cases`` / ``case_links`` — a case and the records linked to it
  (``ref_type`` one of ``alert``, ``gunshot``, ``hit``, ``plate_read``,
  ``footage``). Retention keeps plate reads linked to an open case.
* ``outcomes`` — what an alert or incident linked to a case led to, in the
  seed's categories (see :data:`rtcc.ops.ledger.OUTCOME_CATEGORIES`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rtcc.store.tables import Base, BigId, JSONType, UTCDateTime, _now

__all__ = ["AlertRow", "Base", "Case", "CaseLink", "OutcomeRow", "PacketRow"]


class AlertRow(Base):
    """An alert in the operators' queue (its id is the alert's ``alert_id``)."""

    __tablename__ = "alerts"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[UUID] = mapped_column(Uuid, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    ref_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assigned_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assigned_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dismissed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dismiss_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class PacketRow(Base):
    """The incident packet of one gunshot incident (``kind="gunshot"``) or hotlist hit (``"hit"``)."""

    __tablename__ = "packets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)

    __table_args__ = (UniqueConstraint("kind", "ref_id", name="uq_packets_kind_ref"),)


class Case(Base):
    """An investigation the center supports; ``status`` is ``open`` or ``closed``."""

    __tablename__ = "cases"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(8), index=True, default="open")
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    close_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class CaseLink(Base):
    """A record linked to a case (``ref_type``: alert, gunshot, hit, plate_read, footage)."""

    __tablename__ = "case_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    ref_type: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[str] = mapped_column(String(64))
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)

    __table_args__ = (
        UniqueConstraint("case_id", "ref_type", "ref_id", name="uq_case_links_case_ref"),
        Index("ix_case_links_ref", "ref_type", "ref_id"),
    )


class OutcomeRow(Base):
    """One outcome an alert or incident linked to a case led to."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    ref_type: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)

    __table_args__ = (
        UniqueConstraint("case_id", "ref_type", "ref_id", "category", name="uq_outcomes_case_ref_cat"),
        Index("ix_outcomes_ref", "ref_type", "ref_id"),
    )
