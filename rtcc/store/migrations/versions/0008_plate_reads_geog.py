"""Plate reads: drop the geography GiST index (issue 3, ingest rate).

On PostgreSQL ``plate_reads`` had two GiST indexes on the same points,
``ix_plate_reads_geom`` (geometry) and ``ix_plate_reads_geog``
(``geom::geography``); together they were about a third of the server's
work per stored read. Radius searches now find their candidates through the
geometry index with a bounding box that holds every point within the radius
and test the exact geodesic distance on those
(:func:`rtcc.plates.reads.search_reads`), so the geography index goes.
Nothing changes on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_plate_reads_geog")  # and its partitions' indexes


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_plate_reads_geog ON plate_reads USING gist ((geom::geography))")
