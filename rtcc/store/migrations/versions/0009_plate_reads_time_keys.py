"""Plate reads on SQLite: time-ordered primary key, ids and look-alike keys in an FTS5 index (issue 3).

SQLite ingest was bound by two B-trees keyed at random: the primary key
``(id, read_at)`` (a random UUID first) and ``ix_plate_reads_key_time``
(the look-alike key first). Each stored read dirtied a page of each, so a
batch of 5 000 reads wrote some 10 000 pages (40 MB, estimated) to the WAL
and back.

On SQLite this revision rebuilds ``plate_reads`` (rowids kept, so the FTS5
trigram index stays valid) with the primary key ``(read_at, id)``: the same
uniqueness (a read stored twice has the same id and time), but in arrival
order, so new keys land on the last pages. Ids and look-alike keys are
looked up through ``plate_reads_fts_keys``, an FTS5 index (external
content, ``ascii`` tokens, no positions) of the columns ``id`` and
``plate_key``: FTS5 writes each transaction's new entries as one sorted
segment and merges segments in bulk, so a batch writes a few new pages
instead of a random page per read. A 32-character hex id
and a plate key (at most 16 characters) can never be the same token, so one
index serves both. ``ix_plate_reads_key_time`` is dropped on SQLite; the
model no longer lists it and PostgreSQL keeps it (there the daily
partitions keep each index small).

New rows are added to ``plate_reads_fts_keys`` by
:func:`rtcc.plates.reads.insert_reads` in one statement per batch; triggers
follow deletes and updates. Nothing changes on PostgreSQL.

The rebuild is one transaction. At 10 M reads (a 3.4 GiB file) it took
4 minutes on a shared 2-core machine, its WAL grew past 5.5 GiB, and the file
then keeps the old table's pages as free pages (5.6 GiB; later reads reuse
them, ``VACUUM`` returns them): have twice the file's size free on disk.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The SQLite table as SQLAlchemy creates it at this revision, with the primary key given.
_COLUMNS = (
    "id CHAR(32) NOT NULL, read_at DATETIME NOT NULL, device_id VARCHAR(128) NOT NULL, lat FLOAT, "
    "lon FLOAT, heading_deg FLOAT, direction VARCHAR(2), plate VARCHAR(16) NOT NULL, "
    "plate_key VARCHAR(16) NOT NULL, region VARCHAR(16), confidence FLOAT NOT NULL, "
    "crop_ref VARCHAR(512), image_ref VARCHAR(512), hit BOOLEAN NOT NULL, created_at DATETIME NOT NULL"
)
_NAMES = (
    "id, read_at, device_id, lat, lon, heading_deg, direction, plate, plate_key, region, "
    "confidence, crop_ref, image_ref, hit, created_at"
)

TRIGRAM_TRIGGERS = (
    "CREATE TRIGGER plate_reads_fts_ad AFTER DELETE ON plate_reads BEGIN "
    "INSERT INTO plate_reads_fts(plate_reads_fts, rowid, plate) VALUES ('delete', old.rowid, old.plate); END",
    "CREATE TRIGGER plate_reads_fts_au AFTER UPDATE OF plate ON plate_reads BEGIN "
    "INSERT INTO plate_reads_fts(plate_reads_fts, rowid, plate) VALUES ('delete', old.rowid, old.plate); "
    "INSERT INTO plate_reads_fts(rowid, plate) VALUES (new.rowid, new.plate); END",
)
KEYS_FTS = (
    "CREATE VIRTUAL TABLE plate_reads_fts_keys USING fts5(id, plate_key, content='plate_reads', "
    "content_rowid='rowid', tokenize='ascii', detail='none', columnsize=0)",
    "INSERT INTO plate_reads_fts_keys(plate_reads_fts_keys) VALUES ('rebuild')",
    "CREATE TRIGGER plate_reads_fts_keys_ad AFTER DELETE ON plate_reads BEGIN "
    "INSERT INTO plate_reads_fts_keys(plate_reads_fts_keys, rowid, id, plate_key) "
    "VALUES ('delete', old.rowid, old.id, old.plate_key); END",
    "CREATE TRIGGER plate_reads_fts_keys_au AFTER UPDATE OF id, plate_key ON plate_reads BEGIN "
    "INSERT INTO plate_reads_fts_keys(plate_reads_fts_keys, rowid, id, plate_key) "
    "VALUES ('delete', old.rowid, old.id, old.plate_key); "
    "INSERT INTO plate_reads_fts_keys(rowid, id, plate_key) VALUES (new.rowid, new.id, new.plate_key); END",
)


def _rebuild(primary_key: str, indexes: Sequence[str]) -> None:
    """Rebuild ``plate_reads`` with another primary key, keeping every rowid (SQLite)."""
    op.execute(
        f"CREATE TABLE plate_reads_new ({_COLUMNS}, CONSTRAINT pk_plate_reads PRIMARY KEY ({primary_key}))"
    )
    op.execute(
        f"INSERT INTO plate_reads_new (rowid, {_NAMES}) "
        f"SELECT rowid, {_NAMES} FROM plate_reads ORDER BY rowid"
    )
    op.execute("DROP TABLE plate_reads")  # its indexes and triggers go with it
    op.execute("ALTER TABLE plate_reads_new RENAME TO plate_reads")
    op.execute("CREATE INDEX ix_plate_reads_read_at ON plate_reads (read_at)")
    op.execute("CREATE INDEX ix_plate_reads_device_time ON plate_reads (device_id, read_at)")
    for sql in indexes:
        op.execute(sql)
    for sql in TRIGRAM_TRIGGERS:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild("read_at, id", ())
    for sql in KEYS_FTS:
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TABLE IF EXISTS plate_reads_fts_keys")
    _rebuild("id, read_at", ("CREATE INDEX ix_plate_reads_key_time ON plate_reads (plate_key, read_at)",))
