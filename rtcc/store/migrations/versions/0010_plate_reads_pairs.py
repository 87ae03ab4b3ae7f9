"""Plate reads on SQLite: an index of character pairs for patterns without a trigram (issue 3).

A partial plate such as ``A?C1*`` or ``*7?K*`` holds no three known
characters in a row, so the FTS5 ``trigram`` index has nothing of its own to
look up; session 4 asked it for the 36 trigrams a window with one unknown
can be, at a p95 of 105-268 ms at 10 M reads. This revision indexes the pair
tokens of every plate (:func:`rtcc.plates.reads.plate_pairs`): two
characters with one between (``A2C`` is ``A?C``), and the first and last
four characters tied to their place (``b0Ab``: the plate begins with
``A``) — 13 tokens for a plate of 7. A search asks for two or three tokens
of its pattern (:func:`rtcc.plates.reads.chosen_pairs`) and checks ``LIKE``
on the candidates.

``plate_reads_fts_pairs`` is a contentless FTS5 table (``ascii`` tokens, no
positions) keyed by the ``plate_reads`` rowid. New rows are added by
:func:`rtcc.plates.reads.insert_reads` in one statement per batch; triggers
follow deletes and plate updates (a contentless table is told the tokens it
forgets, so the triggers spell them with the same expression). Existing rows
are indexed here (at 10 M reads the index takes 0.15 GiB).

Nothing changes on PostgreSQL: the same tokens in a GIN index of an
``IMMUTABLE`` PL/pgSQL function of ``plate`` answered those patterns in
42 ms p95 at 10.2 M reads (123 ms without), but the server's CPU per stored
read rose from 25 to 41 us (in isolation: the function 3.6 us, the GIN
entries 7 us) and ingest fell to 16.5k reads/s (34.8k without; session 5,
one run each), below the 20k target; PostgreSQL keeps asking ``pg_trgm``
for spelled-out trigrams.

The token expression below is a frozen copy of
:func:`rtcc.plates.reads.pairs_sql` at this revision; a test checks the two
agree with :func:`rtcc.plates.reads.plate_pairs`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PLATE_MAX = 16
_GAPS = (2,)
_ANCHORS = 4


def pairs_sql(col: str) -> str:
    """The pair tokens of a plate column, in one spaced string."""
    whens = []
    for n in range(1, _PLATE_MAX + 1):
        parts = [
            f"substr({col}, {i + 1}, 1) || '{d}' || substr({col}, {i + d + 1}, 1)"
            for d in _GAPS
            for i in range(n - d)
        ]
        parts += [f"'b{k}' || substr({col}, {k + 1}, 1) || 'b'" for k in range(min(_ANCHORS, n))]
        parts += [f"'e{k}' || substr({col}, {n - k}, 1) || 'e'" for k in range(min(_ANCHORS, n))]
        whens.append(f"WHEN {n} THEN " + " || ' ' || ".join(parts))
    return f"CASE length({col}) {' '.join(whens)} ELSE '' END"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    old, new = pairs_sql("old.plate"), pairs_sql("new.plate")
    op.execute(
        "CREATE VIRTUAL TABLE plate_reads_fts_pairs USING fts5(pairs, content='', tokenize='ascii', "
        "detail='none', columnsize=0)"
    )
    op.execute(
        "INSERT INTO plate_reads_fts_pairs(rowid, pairs) "
        f"SELECT rowid, {pairs_sql('plate')} FROM plate_reads ORDER BY rowid"
    )
    op.execute(
        "CREATE TRIGGER plate_reads_fts_pairs_ad AFTER DELETE ON plate_reads BEGIN "
        "INSERT INTO plate_reads_fts_pairs(plate_reads_fts_pairs, rowid, pairs) "
        f"VALUES ('delete', old.rowid, {old}); END"
    )
    op.execute(
        "CREATE TRIGGER plate_reads_fts_pairs_au AFTER UPDATE OF plate ON plate_reads BEGIN "
        "INSERT INTO plate_reads_fts_pairs(plate_reads_fts_pairs, rowid, pairs) "
        f"VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO plate_reads_fts_pairs(rowid, pairs) VALUES (new.rowid, {new}); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("plate_reads_fts_pairs_au", "plate_reads_fts_pairs_ad"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS plate_reads_fts_pairs")
