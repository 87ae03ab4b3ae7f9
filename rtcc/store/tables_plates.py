"""Tables: plate reads (issue 3).

``plate_reads`` holds one row per :class:`rtcc.events.PlateRead` event; the
row id is the event id, so storing a read twice is harmless.

On PostgreSQL the migration makes the table range-partitioned by ``read_at``
(one partition per UTC day plus ``plate_reads_default``, see
:mod:`rtcc.store.partitions`), adds the generated PostGIS ``geom`` column
with a GiST index (0003 added a second one on ``geom::geography``; 0008
dropped it: radius search goes through the geometry index), a
``pg_trgm`` GIN index on ``plate`` for partial search and
``ix_plate_reads_key_time`` (``plate_key``, ``read_at``): exact plates are
found through it (the folded key, then the plate itself), so one index
serves exact and look-alike search. The model does not list that index:
SQLite has none (migration 0009; :data:`rtcc.store.migrate._EXTRA_INDEXES`).

On SQLite (0009) the primary key is stored as ``(read_at, id)`` — the same
uniqueness, in arrival order, so ingest appends to it instead of writing
random pages — and two FTS5 indexes (external content, rowid-linked) hold
what random-key B-trees would: ``plate_reads_fts`` (``trigram`` tokens of
``plate``, partial search) and ``plate_reads_fts_keys`` (the tokens ``id``
and ``plate_key``: reads by id, exact and look-alike search), and since 0010
the contentless ``plate_reads_fts_pairs`` (the pair tokens of ``plate``,
:func:`rtcc.plates.reads.plate_pairs`).
New rows are indexed by :func:`rtcc.plates.reads.insert_reads`, so insert
reads only through it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Boolean, Float, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rtcc.store.tables import Base, UTCDateTime, _now

__all__ = ["Base", "PlateReadRow"]


class PlateReadRow(Base):
    """One stored plate read.

    ``plate`` is the normalized text; ``plate_key`` the same text with
    look-alike characters folded (:func:`rtcc.plates.matching.skeleton`);
    ``direction`` the compass point of travel (``N`` … ``NW``) when known;
    ``crop_ref`` / ``image_ref`` are media-store refs of the plate crop and
    the vehicle image; ``hit`` is set when the read matched a hotlist entry
    (such reads are kept by retention).
    """

    __tablename__ = "plate_reads"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128))
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    heading_deg: Mapped[float | None] = mapped_column(Float, nullable=True)
    direction: Mapped[str | None] = mapped_column(String(2), nullable=True)
    plate: Mapped[str] = mapped_column(String(16))
    plate_key: Mapped[str] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(16), nullable=True)
    confidence: Mapped[float] = mapped_column(Float)
    crop_ref: Mapped[str | None] = mapped_column(String(512), nullable=True)
    image_ref: Mapped[str | None] = mapped_column(String(512), nullable=True)
    hit: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)

    __table_args__ = (
        Index("ix_plate_reads_read_at", "read_at"),
        Index("ix_plate_reads_device_time", "device_id", "read_at"),
    )
