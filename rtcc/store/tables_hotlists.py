"""Tables: hotlists and their entries, hits, the plate-search ledger and retention runs (issue 3).

* ``hotlist_sources`` — one row per imported list (``ncic``, ``state_csv``) or
  the hand-made BOLO list (``custom``), with its counts;
* ``hotlist_entries`` — plates (or wildcard patterns) with category, reason and
  expiry; a re-import replaces a source's entries in one transaction;
* ``hotlist_state`` — one row whose ``version`` grows on every change, so
  every process's matcher knows when to rebuild;
* ``hotlist_hits`` — a read matched an entry ("verify before action") and the
  person's decision; the entry is copied in, so the hit outlives a re-import;
* ``plate_searches`` — every search of the reads: who, why, for which case,
  the terms and how many results (the transparency page counts them);
* ``retention_runs`` — every purge and what it removed;
* ``media_deletions`` — media files a committed purge freed and that are not
  deleted from disk yet (so a crash between the commit and the file deletion
  orphans nothing: the next run finishes the work).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rtcc.store.tables import Base, BigId, JSONType, UTCDateTime, _now

__all__ = [
    "HitRow",
    "HotlistEntryRow",
    "HotlistSourceRow",
    "HotlistState",
    "MediaDeletionRow",
    "PlateSearchRow",
    "RetentionRunRow",
]


class HotlistSourceRow(Base):
    """An imported hotlist (or the BOLO list) and its counts at the last import.

    ``imported_at`` is the last import (for the BOLO list: its last addition); with
    ``entry_count`` it tells matchers whether the list changed.
    """

    __tablename__ = "hotlist_sources"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    imported_by: Mapped[str] = mapped_column(String(128), default="")
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)


class HotlistEntryRow(Base):
    """One plate (or wildcard pattern: ``?`` one character, ``*`` any run) on a hotlist."""

    __tablename__ = "hotlist_entries"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    plate: Mapped[str] = mapped_column(String(16), index=True)
    category: Mapped[str] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(4), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class HotlistState(Base):
    """A single row (``id = 1``): ``version`` grows whenever any hotlist changes."""

    __tablename__ = "hotlist_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class HitRow(Base):
    """A read matched a hotlist entry; ``status`` is ``verify`` until someone decides.

    ``status``: ``verify`` ("verify before action"), ``confirmed`` or
    ``rejected`` (e.g. a misread), with ``decided_by``, ``decided_at`` and
    ``decision_reason``. One hit per read × entry (re-delivery is harmless).
    On PostgreSQL the migration adds a generated PostGIS ``geom``.
    """

    __tablename__ = "hotlist_hits"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    read_id: Mapped[UUID] = mapped_column(Uuid, index=True)
    entry_id: Mapped[UUID] = mapped_column(Uuid)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    device: Mapped[str] = mapped_column(String(128))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    plate: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    image_ref: Mapped[str | None] = mapped_column(String(512), nullable=True)
    crop_ref: Mapped[str | None] = mapped_column(String(512), nullable=True)
    match: Mapped[str] = mapped_column(String(16))
    distance: Mapped[int] = mapped_column(Integer, default=0)
    entry_plate: Mapped[str] = mapped_column(String(16))
    entry_source: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)

    __table_args__ = (UniqueConstraint("read_id", "entry_id", name="uq_hotlist_hits_read_entry"),)


class PlateSearchRow(Base):
    """One search of the plate reads: who, why, which case, the terms, how many results."""

    __tablename__ = "plate_searches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)
    username: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    purpose_category: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(Text)
    case_number: Mapped[str] = mapped_column(String(64), index=True)
    terms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result_count: Mapped[int] = mapped_column(Integer, default=0)


class RetentionRunRow(Base):
    """One retention run: the cut-off it applied and what it removed or kept."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    plate_reads_days: Mapped[int] = mapped_column(Integer)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    reads_deleted: Mapped[int] = mapped_column(Integer, default=0)
    media_deleted: Mapped[int] = mapped_column(Integer, default=0)
    kept_for_hits: Mapped[int] = mapped_column(Integer, default=0)
    kept_for_cases: Mapped[int] = mapped_column(Integer, default=0)


class MediaDeletionRow(Base):
    """A media file (by ref) a committed retention purge freed, not yet deleted from disk.

    Written in the purge's own transaction and removed once the file is gone,
    so the file deletion survives a crash after the commit: every run works
    through the rows left by an earlier one (see :mod:`rtcc.oversight.retention`).
    """

    __tablename__ = "media_deletions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(80))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
