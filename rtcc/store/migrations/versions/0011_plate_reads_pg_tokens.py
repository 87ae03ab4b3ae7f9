"""Plate reads on PostgreSQL: a GIN index of pair tokens for patterns without a trigram (issue 3).

A partial plate such as ``A?C1*`` or ``?B?2???`` holds no three known
characters in a row, so ``pg_trgm`` has no trigram of its own to look up
(126 ms p95 at 10 M reads, session 5). Migration 0010 gave SQLite an index
of pair tokens; on PostgreSQL the same 13 tokens behind a PL/pgSQL function
answered in 42 ms but cut the ingest rate from 27.9k to 16.5k reads/s.
This revision keeps fewer tokens, computed without a function call: the
stored generated column ``plate_tokens`` (``text[]``) holds
:func:`rtcc.plates.reads.pg_plate_tokens` — the characters two apart
(``A2C`` is ``A?C``) and the first four characters tied to their place
(``b31b``: the fourth is ``1``), 9 tokens for a plate of 7 — and the GIN
index ``ix_plate_reads_tokens`` (one per daily partition) serves
``plate_tokens @> ARRAY[…]``.

PostgreSQL only; SQLite is unchanged (its 0010 index holds the tokens).
Adding the column rewrites every stored partition. The expression below is
a frozen copy of :func:`rtcc.plates.reads.pg_tokens_sql` at this revision;
a test checks the two agree with :func:`rtcc.plates.reads.pg_plate_tokens`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PLATE_MAX = 16
_GAPS = (2,)
_HEAD_ANCHORS = 4


def tokens_sql(col: str) -> str:
    """The ``text[]`` of the tokens of a plate column."""
    whens = []
    for n in range(1, _PLATE_MAX + 1):
        parts = [
            f"substr({col}, {i + 1}, 1) || '{d}' || substr({col}, {i + d + 1}, 1)"
            for d in _GAPS
            for i in range(n - d)
        ]
        parts += [f"'b{k}' || substr({col}, {k + 1}, 1) || 'b'" for k in range(min(_HEAD_ANCHORS, n))]
        whens.append(f"WHEN {n} THEN ARRAY[{', '.join(parts)}]")
    return f"CASE length({col}) {' '.join(whens)} ELSE ARRAY[]::text[] END"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE plate_reads ADD COLUMN plate_tokens text[] "
        f"GENERATED ALWAYS AS ({tokens_sql('plate')}) STORED"
    )
    op.execute("CREATE INDEX ix_plate_reads_tokens ON plate_reads USING gin (plate_tokens)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_plate_reads_tokens")
    op.execute("ALTER TABLE plate_reads DROP COLUMN IF EXISTS plate_tokens")
