"""Tables: plate reads (issue 3).

``plate_reads`` holds one row per :class:`rtcc.events.PlateRead` event; the
row id is the event id, so storing a read twice is harmless.

On PostgreSQL the migration makes the table range-partitioned by ``read_at``
(one partition per UTC day plus ``plate_reads_default``, see
:mod:`rtcc.store.partitions`), adds the generated PostGIS ``geom`` column
with a GiST index (0003 added a second one on ``geom::geography``; 0008
dropped it: radius search goes through the geometry index) and a
``pg_trgm`` GIN index on ``plate`` for partial search. On SQLite it adds
an FTS5 ``trigram`` index ``plate_reads_fts`` (external content; new rows are indexed by
:func:`rtcc.plates.reads.insert_reads`, so insert reads only through it).
Exact plates are found through ``ix_plate_reads_key_time`` (the folded key,
then the plate itself): one index serves exact and look-alike search.
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
        Index("ix_plate_reads_key_time", "plate_key", "read_at"),
        Index("ix_plate_reads_device_time", "device_id", "read_at"),
    )
