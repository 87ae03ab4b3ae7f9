"""The plate-read repository: store, search, mark and purge plate reads.

Every function takes an open SQLAlchemy session (run it through
``ctx.store.write`` / ``ctx.store.read``); the caller commits.

Search modes
------------
``exact``
    The normalized plate equals the query.
``partial``
    The query holds wildcards (``?`` one character, ``*`` any run) and then
    describes the whole plate (``AB?12*``), or it holds none and is a
    substring of the plate (``B12`` finds ``AB1234``). PostgreSQL answers from
    a ``pg_trgm`` GIN index, SQLite from an FTS5 ``trigram`` index. A pattern
    without three known characters in a row (``A?C1*``, ``*7?K*``,
    ``?B?2???``) has no trigram of its own. SQLite answers it from the pair
    tokens of migration 0010 (:func:`plate_pairs`: two characters with one
    between, and the first and last four characters in their place, in
    the FTS5 table ``plate_reads_fts_pairs``), two or three of them chosen
    per pattern (:func:`chosen_pairs`), then ``LIKE``; patterns with no
    such token (``12``, ``*A*``) are matched newest first through the time
    index. PostgreSQL keeps fewer tokens (:func:`pg_plate_tokens`: the pairs
    and the first four characters in their place, 9 for a plate of 7) in the
    generated column ``plate_tokens`` with a GIN index (migration 0011) and
    asks it for the chosen ones (:func:`pg_chosen_tokens`) when a pattern
    has two or more; otherwise (``*7?K*``) it asks ``pg_trgm`` for the 36
    trigrams a window of the pattern with one unknown can be (a regular
    expression, :func:`window_regex`).
``lookalike``
    The plates are equal after folding look-alike characters
    (:func:`rtcc.plates.matching.skeleton`: 0/O/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G).

Exact and look-alike plates (and reads by id) are found through the folded
key: on PostgreSQL the index ``ix_plate_reads_key_time``, on SQLite the FTS5
index ``plate_reads_fts_keys`` (:func:`keys_match`; migration 0009 explains
why SQLite keeps no B-tree keyed at random).

Areas
-----
``near=(lat, lon, radius_m)`` keeps reads within ``radius_m`` metres
(PostGIS ``ST_DWithin`` on geography, the candidates found through the
geometry GiST index with :func:`radius_box`; on SQLite a local equirectangular
distance, within 0.1 % below 50 km). ``polygon=[(lat, lon), …]`` keeps reads
inside the polygon (PostGIS ``ST_Covers``; on SQLite a bounding box in SQL
then an exact point-in-polygon test with Shapely).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    column,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from rtcc.errors import ValidationFailed
from rtcc.events import PlateRead, Position
from rtcc.plates.matching import skeleton
from rtcc.plates.normalize import normalize_plate
from rtcc.store.tables_plates import PlateReadRow

SearchMode = Literal["exact", "partial", "lookalike"]
EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0
_INSERT_CHUNK = 5000
_PURGE_CHUNK = 5000

_T = cast(Table, PlateReadRow.__table__)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def row_values(read: PlateRead, now: datetime | None = None) -> dict[str, Any]:
    """The ``plate_reads`` column values of one :class:`~rtcc.events.PlateRead`."""
    plate = normalize_plate(read.plate)
    return {
        "id": read.event_id,
        "read_at": read.occurred_at,
        "device_id": read.device,
        "lat": read.pos.lat,
        "lon": read.pos.lon,
        "heading_deg": read.heading_deg,
        "direction": read.direction,
        "plate": plate,
        "plate_key": skeleton(plate),
        "region": read.region,
        "confidence": read.confidence,
        "crop_ref": read.crop_ref,
        "image_ref": read.image_ref,
        "hit": False,
        "created_at": now or datetime.now(UTC),
    }


_COLUMNS = (
    "id",
    "read_at",
    "device_id",
    "lat",
    "lon",
    "heading_deg",
    "direction",
    "plate",
    "plate_key",
    "region",
    "confidence",
    "crop_ref",
    "image_ref",
    "hit",
    "created_at",
)
_COLS_SQL = ", ".join(_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO plate_reads ({_COLS_SQL}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_PG_STAGE = "_plate_reads_in"
_PG_TYPES = (
    "uuid",
    "timestamptz",
    "text",
    "float8",
    "float8",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "float8",
    "text",
    "text",
    "bool",
    "timestamptz",
)
"""Binary ``COPY`` types of :data:`_COLUMNS` (``varchar`` columns take ``text``)."""


def _sqlite_time(t: datetime) -> str:
    """A UTC time as :class:`rtcc.store.tables.UTCDateTime` stores it on SQLite.

    Examples
    --------
    >>> from datetime import timezone
    >>> _sqlite_time(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    '2026-01-02 03:04:05.000006'
    >>> _sqlite_time(datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))))
    '2026-01-02 03:04:05.000000'
    """
    if t.tzinfo is UTC:  # the usual case, a third of the cost: "…+00:00" without its offset
        return t.isoformat(" ", "microseconds")[:26]
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_PLAIN_PLATE = re.compile(r"[0-9A-Z]+").fullmatch


def _plate(text: str) -> str:
    """:func:`~rtcc.plates.normalize.normalize_plate`, skipped for a plate already normalized (as events
    hold them)."""
    return text if _PLAIN_PLATE(text) else normalize_plate(text)


def sqlite_rows(reads: Sequence[PlateRead], now: datetime) -> list[tuple[Any, ...]]:
    """The SQLite column values (in :data:`_COLUMNS` order) of reads, as SQLAlchemy would store them."""
    created = _sqlite_time(now)
    rows = []
    for r in reads:
        plate = _plate(r.plate)
        rows.append(
            (
                r.event_id.hex,
                _sqlite_time(r.occurred_at),
                r.device,
                r.pos.lat,
                r.pos.lon,
                r.heading_deg,
                r.direction,
                plate,
                skeleton(plate),
                r.region,
                r.confidence,
                r.crop_ref,
                r.image_ref,
                0,
                created,
            )
        )
    return rows


def pg_rows(reads: Sequence[PlateRead], now: datetime) -> Iterator[tuple[Any, ...]]:
    """The PostgreSQL column values (in :data:`_COLUMNS` order) of reads, for ``COPY``."""
    for r in reads:
        plate = _plate(r.plate)
        yield (
            r.event_id,
            r.occurred_at,
            r.device,
            r.pos.lat,
            r.pos.lon,
            r.heading_deg,
            r.direction,
            plate,
            skeleton(plate),
            r.region,
            r.confidence,
            r.crop_ref,
            r.image_ref,
            False,
            now,
        )


def read_event(row: PlateReadRow) -> PlateRead:
    """A stored read as the ``plate_read`` event it came as (to publish or match it again)."""
    return PlateRead(
        event_id=row.id,
        occurred_at=row.read_at,
        source=row.device_id,
        device=row.device_id,
        pos=Position(lat=row.lat or 0.0, lon=row.lon or 0.0),
        plate=row.plate,
        region=row.region,
        confidence=row.confidence,
        heading_deg=row.heading_deg,
        image_ref=row.image_ref,
        crop_ref=row.crop_ref,
        direction=row.direction,
    )


def insert_reads(session: Session, reads: Sequence[PlateRead]) -> int:
    """Store reads in bulk, each once (keyed by its event id); returns how many were new.

    Bulk paths below the ORM (the reads are already validated events): on
    SQLite one ``INSERT OR IGNORE`` ``executemany`` (the primary key
    ``(read_at, id)`` refuses a read stored before), then the new rows' plates
    into the FTS5 trigram index and their ids and look-alike keys into
    ``plate_reads_fts_keys``, one statement each (this is the only writer of
    those indexes: insert reads through this function), and their pair tokens
    (:func:`plate_pairs`) into ``plate_reads_fts_pairs``. On PostgreSQL one binary
    ``COPY`` straight into ``plate_reads`` (each row routed to its day's
    partition) under a savepoint; if the primary key refuses it — a read
    already stored, e.g. a retransmission or another recorder racing this
    one — the savepoint is rolled back and the batch goes the slower way,
    ``COPY`` into a temporary table, then ``INSERT … SELECT … ON CONFLICT
    DO NOTHING``, so duplicates are still stored once and nothing stored is
    touched. Runs in the session's transaction; the caller commits.
    """
    if not reads:
        return 0
    now = datetime.now(UTC)
    dialect = _dialect(session)
    raw: Any = session.connection().connection.driver_connection
    inserted = 0
    if dialect == "sqlite":
        rows = sqlite_rows(reads, now)
        cur = raw.cursor()
        try:
            top = cur.execute("SELECT coalesce(max(rowid), 0) FROM plate_reads").fetchone()[0]
            cur.executemany(_SQLITE_INSERT, rows)
            inserted = cur.rowcount
            # new rows get rowids above the old maximum: index their plates, ids and look-alike keys
            # in one statement per index (FTS5 writes each transaction's entries as one segment)
            cur.execute(
                "INSERT INTO plate_reads_fts(rowid, plate) "
                "SELECT rowid, plate FROM plate_reads WHERE rowid > ?",
                (top,),
            )
            cur.execute(
                "INSERT INTO plate_reads_fts_keys(rowid, id, plate_key) "
                "SELECT rowid, id, plate_key FROM plate_reads WHERE rowid > ?",
                (top,),
            )
            # the pair tokens from Python (half the cost of pairs_sql, the triggers' expression)
            raw.create_function("rtcc_plate_pairs", 1, _pairs_text, deterministic=True)
            cur.execute(
                "INSERT INTO plate_reads_fts_pairs(rowid, pairs) "
                "SELECT rowid, rtcc_plate_pairs(plate) FROM plate_reads WHERE rowid > ?",
                (top,),
            )
        finally:
            cur.close()
        return int(inserted)
    if dialect != "postgresql":  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database {dialect}")
    from psycopg.errors import UniqueViolation

    firsts: dict[tuple[uuid.UUID, datetime], PlateRead] = {}
    for r in reads:  # a batch holding one read twice: the first, as INSERT OR IGNORE keeps it
        firsts.setdefault((r.event_id, r.occurred_at), r)
    unique = list(firsts.values())
    with raw.cursor() as cur:
        cur.execute("SAVEPOINT rtcc_plate_reads")
        try:
            with cur.copy(f"COPY plate_reads ({_COLS_SQL}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_PG_TYPES)
                for row in pg_rows(unique, now):
                    copy.write_row(row)
        except UniqueViolation:  # a read already stored (a retransmission, another recorder)
            cur.execute("ROLLBACK TO SAVEPOINT rtcc_plate_reads")
        else:
            cur.execute("RELEASE SAVEPOINT rtcc_plate_reads")
            return len(unique)
        return _pg_insert_new(cur, reads, now)


def _pg_insert_new(cur: Any, reads: Sequence[PlateRead], now: datetime) -> int:
    """PostgreSQL: store the reads not stored yet (staging table, then ``ON CONFLICT DO NOTHING``)."""
    inserted = 0
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGE} "
        "(LIKE plate_reads INCLUDING DEFAULTS EXCLUDING GENERATED) ON COMMIT DELETE ROWS"
    )
    for i in range(0, len(reads), _INSERT_CHUNK):
        with cur.copy(f"COPY {_PG_STAGE} ({_COLS_SQL}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_PG_TYPES)
            for row in pg_rows(reads[i : i + _INSERT_CHUNK], now):
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO plate_reads ({_COLS_SQL}) SELECT {_COLS_SQL} FROM {_PG_STAGE} "
            "ON CONFLICT (id, read_at) DO NOTHING"
        )
        inserted += max(cur.rowcount, 0)
        cur.execute(f"TRUNCATE {_PG_STAGE}")
    return inserted


def keys_match(session: Session, token: str) -> list[ColumnElement[bool]]:
    """SQLite: the condition "``id`` or ``plate_key`` is ``token``" as ``plate_reads_fts_keys`` answers it.

    SQLite keeps no B-tree on either column (migration 0009): the FTS5 index
    of both gives the candidate rowids (a 32-character hex id and a plate
    key of at most 16 characters are never the same token); the caller
    still compares the column itself. An empty list on PostgreSQL, whose
    indexes serve the column comparison directly.
    """
    if _dialect(session) != "sqlite":
        return []
    match = f'"{token}"'  # ids and keys are [0-9A-Za-z]: nothing to escape
    return [
        and_(
            text(
                "plate_reads.rowid IN "
                "(SELECT rowid FROM plate_reads_fts_keys WHERE plate_reads_fts_keys MATCH :key_token)"
            ).bindparams(key_token=match)
        )
    ]


def get_read(session: Session, read_id: str | uuid.UUID) -> PlateReadRow | None:
    """One read by its id (the PlateRead event id), or None."""
    rid = _uuid(read_id)
    if rid is None:
        return None
    by_id = [*keys_match(session, rid.hex), PlateReadRow.id == rid]
    return session.scalars(select(PlateReadRow).where(*by_id).limit(1)).first()


def mark_hit(session: Session, read_id: str | uuid.UUID) -> bool:
    """Mark a read as having hit a hotlist entry (retention keeps it); False if no such read."""
    rid = _uuid(read_id)
    if rid is None:
        return False
    result = session.execute(update(_T).where(*keys_match(session, rid.hex), _T.c.id == rid).values(hit=True))
    return bool(getattr(result, "rowcount", 0))


def partial_pattern(query: str) -> str:
    """The SQL ``LIKE`` pattern of a partial-plate query.

    Examples
    --------
    >>> partial_pattern("ab-1?3*")
    'AB1_3%'
    >>> partial_pattern("B12")
    '%B12%'
    """
    q = normalize_plate(query, wildcards=True)
    if not q.strip("*?"):
        raise ValidationFailed("a partial plate needs at least one letter or digit")
    if "*" in q or "?" in q:
        return q.replace("*", "%").replace("?", "_")
    return f"%{q}%"


PLATE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""The characters of a normalized plate (:func:`rtcc.plates.normalize.normalize_plate`)."""
PLATE_MAX = 16
"""The longest plate (:class:`rtcc.events.PlateRead`)."""
PAIR_GAPS = (2,)
"""Distances of the character pairs in :func:`plate_pairs`: one character between (``A?C``)."""
PAIR_ANCHORS = 4
"""Characters of :func:`plate_pairs` tied to their place, from the start and from the end."""
_PAIRS_ASKED = 3  # at most this many tokens of a pattern are asked of the index


def plate_pairs(plate: str) -> list[str]:
    """The pair tokens of a plate: what the pair indexes hold for patterns without a trigram.

    * ``a`` + gap + ``b`` for every two characters ``a``, ``b`` at distance
      2 (:data:`PAIR_GAPS`): ``A2C`` is ``A?C``, the window of three with
      its middle unknown that a pattern without a trigram has (``*7?K*``);
    * ``b`` + offset + ``c`` + ``b`` for the first :data:`PAIR_ANCHORS`
      characters (``b0Ab``: the plate begins with ``A``; ``b31b``: its
      fourth character is ``1``) and ``e`` + offset + ``c`` + ``e`` for the
      last ones (``e0Ze``: it ends with ``Z``). A plate of up to 8
      characters has every character tied to its place.

    Pair tokens are 3 characters, anchor tokens 4, so none is another
    (FTS5's ``ascii`` tokenizer folds case: ``b0Ab`` is ``b0ab``). A plate of
    7 characters has 13 tokens. Every plate matching a ``LIKE`` pattern holds
    every token of it (:func:`pattern_pairs`). Neighbours (``AB``) are not
    indexed: they would cost 6 more tokens a read, and a pattern whose only
    pair is two neighbours is either anchored (``AB*``: ``b0Ab``, ``b1Bb``)
    or common enough (``*7K*``, one plate in a few hundred) for the
    newest-first walk through time.

    Examples
    --------
    >>> plate_pairs("AB12")
    ['A21', 'B22', 'b0Ab', 'b1Bb', 'b21b', 'b32b', 'e02e', 'e11e', 'e2Be', 'e3Ae']
    """
    n = len(plate)
    tokens = [f"{a}{d}{b}" for d in PAIR_GAPS for a, b in zip(plate, plate[d:], strict=False)]
    tokens += [f"b{k}{plate[k]}b" for k in range(min(PAIR_ANCHORS, n))]
    tokens += [f"e{k}{plate[n - 1 - k]}e" for k in range(min(PAIR_ANCHORS, n))]
    return tokens


def _pairs_text(plate: str) -> str:
    return " ".join(plate_pairs(plate))


def _pattern_tokens(
    pattern: str, anchors: tuple[int, int] = (PAIR_ANCHORS, PAIR_ANCHORS)
) -> dict[str, frozenset[tuple[int, int]]]:
    """The tokens of :func:`pattern_pairs`, each with the known characters it pins, as (run, offset);
    ``anchors``: the characters tied to their place from the start and from the end."""
    runs = pattern.split("%")
    tokens: dict[str, frozenset[tuple[int, int]]] = {}
    for r, run in enumerate(runs):
        for d in PAIR_GAPS:
            for i in range(len(run) - d):
                if run[i] != "_" and run[i + d] != "_":
                    tokens.setdefault(f"{run[i]}{d}{run[i + d]}", frozenset({(r, i), (r, i + d)}))
    head, tail, last = runs[0], runs[-1], len(runs) - 1
    for k in range(min(anchors[0], len(head))):
        if head[k] != "_":
            tokens.setdefault(f"b{k}{head[k]}b", frozenset({(0, k)}))
    for k in range(min(anchors[1], len(tail))):
        if tail[-1 - k] != "_":
            tokens.setdefault(f"e{k}{tail[-1 - k]}e", frozenset({(last, len(tail) - 1 - k)}))
    return tokens


def pattern_pairs(pattern: str) -> list[str]:
    """The tokens of :func:`plate_pairs` every plate matching a ``LIKE`` pattern holds.

    Within a run without ``%`` the known characters keep their distances;
    the first run is tied to the start unless the pattern begins with ``%``,
    the last to the end unless it ends with ``%``.

    Examples
    --------
    >>> pattern_pairs("A_C1%")
    ['A2C', 'b0Ab', 'b2Cb', 'b31b']
    >>> pattern_pairs("%7_K%"), pattern_pairs("%12%")
    (['72K'], [])
    """
    return list(_pattern_tokens(pattern))


def _char_odds(c: str) -> float:
    return 0.1 if c.isdigit() else 1 / 26


def _share(token: str) -> float:
    """The estimated share of plates holding a token: a pair about 5 places times the odds of each
    character (1/10 a digit, 1/26 a letter), an anchor the odds of its character."""
    if len(token) == 3:
        return 5 * _char_odds(token[0]) * _char_odds(token[2])
    return _char_odds(token[2])


def chosen_pairs(
    pattern: str, n: int = _PAIRS_ASKED, anchors: tuple[int, int] = (PAIR_ANCHORS, PAIR_ANCHORS)
) -> list[str]:
    """Up to ``n`` tokens of :func:`pattern_pairs` to ask the index for: few, rare, and pinning much.

    The rarest token (:func:`_share`) first, then each time the one pinning
    the most known characters not pinned yet (the rarer on a tie), while
    some are left; a single token gets the rarest other as a second. The
    plates holding them are then nearly the matches (``A?C1*``: ``A2C`` and
    ``b31b``), so few rows are read to check ``LIKE``.

    Examples
    --------
    >>> chosen_pairs("A_C1%"), chosen_pairs("_B_2___")
    (['A2C', 'b31b'], ['B22', 'b1Bb'])
    >>> chosen_pairs("%7_K%"), chosen_pairs("A__1%", 1)
    (['72K'], ['b0Ab'])
    """
    tokens = _pattern_tokens(pattern, anchors)
    if not tokens or n < 1:
        return []
    first = min(tokens, key=lambda t: (_share(t), t))
    chosen, pinned = [first], set(tokens[first])
    known = set().union(*tokens.values())
    while len(chosen) < n and pinned < known:
        best = max(
            (t for t in tokens if t not in chosen), key=lambda t: (len(tokens[t] - pinned), -_share(t), t)
        )
        chosen.append(best)
        pinned |= tokens[best]
    if len(chosen) == 1 and n > 1 and len(tokens) > 1:
        chosen.append(min((t for t in tokens if t != first), key=lambda t: (_share(t), t)))
    return chosen


def pairs_sql(col: str) -> str:
    """An SQLite expression of :func:`plate_pairs` of a column: the tokens in one string, spaced.

    One ``CASE`` branch per plate length (1 … :data:`PLATE_MAX`), each a
    plain concatenation, so a row costs one branch. Migration 0010 holds a
    copy (its backfill and the triggers that tell the contentless index
    which tokens a deleted or changed row had); a test checks both agree
    with :func:`plate_pairs`.
    """
    whens = []
    for n in range(1, PLATE_MAX + 1):
        parts = _token_sql_parts(col, n, PAIR_ANCHORS, PAIR_ANCHORS)
        whens.append(f"WHEN {n} THEN " + " || ' ' || ".join(parts))
    return f"CASE length({col}) {' '.join(whens)} ELSE '' END"


def _token_sql_parts(col: str, n: int, start: int, end: int) -> list[str]:
    """SQL string expressions of the tokens of a plate of length ``n`` in ``col``: its gap pairs, then
    ``b<k><c>b`` for its first ``start`` characters and ``e<k><c>e`` for its last ``end``."""
    parts = [
        f"substr({col}, {i + 1}, 1) || '{d}' || substr({col}, {i + d + 1}, 1)"
        for d in PAIR_GAPS
        for i in range(n - d)
    ]
    parts += [f"'b{k}' || substr({col}, {k + 1}, 1) || 'b'" for k in range(min(start, n))]
    parts += [f"'e{k}' || substr({col}, {n - k}, 1) || 'e'" for k in range(min(end, n))]
    return parts


PG_TOKEN_ANCHORS = (4, 0)
"""PostgreSQL tokens (:func:`pg_plate_tokens`): characters tied to their place from the start and the end."""
PG_TOKENS_COLUMN = "plate_tokens"
"""PostgreSQL: the generated ``text[]`` column of :func:`pg_plate_tokens` (migration 0011), GIN indexed."""


def pg_plate_tokens(plate: str) -> list[str]:
    """The tokens PostgreSQL keeps of a plate: :func:`plate_pairs` with only the first four anchors.

    Nine tokens for a plate of 7 (13 in SQLite's index): the gap-2 pairs
    and ``b<k><c>b`` for its first :data:`PG_TOKEN_ANCHORS` characters. The
    end anchors are left out, to keep the ingest cost down (each GIN entry
    is written at insert); a pattern with fewer than two tokens of these
    (``*7?K*``) is answered by the trigram index (:func:`window_regex`).

    Examples
    --------
    >>> pg_plate_tokens("AB12")
    ['A21', 'B22', 'b0Ab', 'b1Bb', 'b21b', 'b32b']
    """
    tokens = [f"{a}{d}{b}" for d in PAIR_GAPS for a, b in zip(plate, plate[d:], strict=False)]
    return tokens + [f"b{k}{plate[k]}b" for k in range(min(PG_TOKEN_ANCHORS[0], len(plate)))]


def pg_tokens_sql(col: str) -> str:
    """A PostgreSQL ``text[]`` expression of :func:`pg_plate_tokens` of a column (migration 0011's
    generated column holds a frozen copy; a test checks they agree)."""
    whens = []
    for n in range(1, PLATE_MAX + 1):
        parts = _token_sql_parts(col, n, *PG_TOKEN_ANCHORS)
        whens.append(f"WHEN {n} THEN ARRAY[{', '.join(parts)}]")
    return f"CASE length({col}) {' '.join(whens)} ELSE ARRAY[]::text[] END"


def pg_chosen_tokens(pattern: str) -> list[str]:
    """PostgreSQL: the tokens of :func:`pg_plate_tokens` asked of the index for a pattern without a
    trigram (:func:`chosen_pairs`), or none when it has fewer than two (a single pair such as ``72K``
    is held by one plate in fifty: the trigram index does better).

    Examples
    --------
    >>> pg_chosen_tokens("A_C1%"), pg_chosen_tokens("_B_2___"), pg_chosen_tokens("%7_K%")
    (['A2C', 'b31b'], ['B22', 'b1Bb'], [])
    """
    if has_trigram(pattern):
        return []
    tokens = chosen_pairs(pattern, anchors=PG_TOKEN_ANCHORS)
    return tokens if len(tokens) >= 2 else []


_PG_WINDOWS = 1  # PostgreSQL: regular expressions (windows of unknown_windows) per pattern
_MATCH_GROUPS = 3  # at most this many windows of one pattern


_ANY_PLATE_CHAR = "(" + "|".join(PLATE_ALPHABET) + ")"


def unknown_windows(pattern: str) -> list[str]:
    """Up to three windows of three characters with one ``_`` in a ``LIKE`` pattern without a trigram.

    Every plate matching ``A_C1%`` holds one of the 36 trigrams ``A_C`` can
    be, and one of those of ``_C1``; ``A__1%`` or ``12`` have no such window.

    Examples
    --------
    >>> unknown_windows("A_C1%")
    ['A_C', '_C1']
    >>> unknown_windows("ABC_1%"), unknown_windows("A__1%")
    ([], [])
    """
    if has_trigram(pattern):
        return []
    windows = [seg[i : i + 3] for seg in pattern.split("%") for i in range(len(seg) - 2)]
    return [w for w in windows if w.count("_") == 1][:_MATCH_GROUPS]


def window_regex(window: str) -> str:
    """A POSIX regular expression for a window of :func:`unknown_windows`, for ``pg_trgm``.

    ``_`` is spelled as an alternation of the 36 plate characters, not as
    the class ``[0-9A-Z]``: ``pg_trgm`` turns a class of more than a few
    characters into no trigram at all, but each alternative into its own.

    Examples
    --------
    >>> window_regex("A_C").replace(_ANY_PLATE_CHAR, "(0|…|Z)")
    'A(0|…|Z)C'
    """
    return window.replace("_", _ANY_PLATE_CHAR)


def has_trigram(pattern: str) -> bool:
    """Whether a ``LIKE`` pattern holds three known characters in a row (a trigram index serves it)."""
    return any(len(run) >= 3 for run in pattern.replace("%", "_").split("_"))


def pairs_match(pattern: str) -> str | None:
    """The FTS5 ``MATCH`` query of ``plate_reads_fts_pairs`` for a pattern without a trigram, or None.

    The tokens of :func:`chosen_pairs`, all required: every plate
    matching the pattern holds them, so the index gives a superset of the
    matches and ``LIKE`` on the plate keeps the exact ones. None when the
    pattern holds a trigram (the trigram index serves ``LIKE`` itself) or
    no two known characters one apart and no anchored one (``12``, ``*A*``).

    Examples
    --------
    >>> pairs_match("A_C1%")
    '"A2C" "b31b"'
    >>> pairs_match("ABC_1%") is None, pairs_match("%12%") is None
    (True, True)
    """
    if has_trigram(pattern):
        return None
    tokens = chosen_pairs(pattern)
    return " ".join(f'"{t}"' for t in tokens) if tokens else None


def _plate_filter(session: Session, plate: str, mode: SearchMode) -> ColumnElement[bool]:
    if mode == "exact":  # through the look-alike key (an index, or SQLite's FTS5 keys), then the plate
        exact = _need(normalize_plate(plate))
        key = skeleton(exact)
        return and_(*keys_match(session, key), PlateReadRow.plate_key == key, PlateReadRow.plate == exact)
    if mode == "lookalike":
        key = skeleton(_need(normalize_plate(plate)))
        return and_(*keys_match(session, key), PlateReadRow.plate_key == key)
    if mode == "partial":
        pattern = partial_pattern(plate)
        if _dialect(session) == "sqlite":
            if has_trigram(pattern):
                return and_(
                    text(
                        "plate_reads.rowid IN (SELECT rowid FROM plate_reads_fts WHERE plate LIKE :pattern)"
                    ).bindparams(pattern=pattern)
                )
            expr = pairs_match(pattern)
            if expr is None:
                # no trigram and no pair or anchored character (``*A*``): no index narrows it, and
                # FTS5 would read every row; newest first through the read_at index stops at the limit
                return PlateReadRow.plate.like(pattern)
            # no trigram in the pattern (A_C1%): candidates from its pair tokens (chosen_pairs), then LIKE
            return and_(
                text(
                    "plate_reads.rowid IN "
                    "(SELECT rowid FROM plate_reads_fts_pairs WHERE plate_reads_fts_pairs MATCH :m)"
                ).bindparams(m=expr),
                PlateReadRow.plate.like(pattern),
            )
        # the pattern inline, not a bind parameter: a prepared statement's generic plan cannot know
        # whether the trigram index fits it (psycopg prepares repeated queries) and scans by time
        like = PlateReadRow.plate.like(bindparam("plate_pattern", pattern, literal_execute=True))
        if has_trigram(pattern):
            return like
        tokens = pg_chosen_tokens(pattern)
        if tokens:
            # candidates from the token index (migration 0011), then LIKE; ``plate || ''`` so that the
            # planner does not also scan the trigram index, which holds nothing of this pattern. The
            # tokens are inline (as the pattern, for the plan): [0-9A-Zb] only, nothing to quote
            array = "ARRAY[" + ", ".join(f"'{t}'" for t in tokens) + "]::text[]"
            return and_(
                text(f"plate_reads.{PG_TOKENS_COLUMN} @> {array}"),
                (PlateReadRow.plate + literal_column("''")).like(
                    bindparam("plate_pattern", pattern, literal_execute=True)
                ),
            )
        # no trigram in A_C1%: pg_trgm spells a regular expression for its first window out into the
        # 36 trigrams it can be (AAC … A9C) and the index needs one of them. One window, not all
        # (_PG_WINDOWS): a search reads the newest partitions' pending lists of fresh index entries
        # row by row, at a cost that grows with the trigrams asked for (165 ms with two windows, 93 ms
        # with one, at 26 k pending rows; session 4, one trial each: p95 257 vs 196 ms right after an
        # ingest, though 92 vs 118 ms once the lists are merged), and one window already narrows
        # A_C1% to a few hundred rows a day
        windows = unknown_windows(pattern)[:_PG_WINDOWS]
        if not windows:
            return like
        regexes = [
            PlateReadRow.plate.regexp_match(bindparam(f"plate_w{i}", window_regex(w), literal_execute=True))
            for i, w in enumerate(windows)
        ]
        return and_(like, *regexes)
    raise ValidationFailed(f"unknown search mode {mode!r}; one of exact, partial, lookalike")


def _need(plate: str) -> str:
    if not plate:
        raise ValidationFailed("the plate has no letters or digits")
    return plate


def radius_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float] | None:
    r"""A (lon_min, lat_min, lon_max, lat_max) box holding every point within ``radius_m`` of a point.

    On a sphere of radius :math:`R` the points within angular distance
    :math:`\delta = r / R` of latitude :math:`\varphi` lie within
    :math:`\delta` of it in latitude and within
    :math:`\arcsin(\sin\delta / \cos\varphi)` in longitude (when the cap
    reaches no pole). Geodesic distances on the WGS 84 spheroid differ from
    the mean sphere's by less than 0.6 %; :math:`\delta` gets a 1 % margin.

    Returns None when the box would reach within a degree of a pole or
    cross the antimeridian (no single box then).

    Examples
    --------
    >>> [round(v, 4) for v in radius_box(0.0, 0.0, 111_195.0)]
    [-1.01, -1.01, 1.01, 1.01]
    """
    delta = radius_m / EARTH_RADIUS_M * 1.01
    dlat = math.degrees(delta)
    if abs(lat) + dlat >= 89.0:
        return None
    dlon = math.degrees(math.asin(min(1.0, math.sin(delta) / math.cos(math.radians(lat)))))
    if lon - dlon < -180.0 or lon + dlon > 180.0:
        return None
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def _near_filter(session: Session, lat: float, lon: float, radius_m: float) -> ColumnElement[bool]:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (0 < radius_m <= 1_000_000):
        raise ValidationFailed("near needs -90 <= lat <= 90, -180 <= lon <= 180 and 0 < radius_m <= 1000 km")
    if _dialect(session) == "postgresql":
        exact = text(
            "ST_DWithin(plate_reads.geom::geography, "
            "ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography, :near_r)"
        ).bindparams(near_lon=lon, near_lat=lat, near_r=radius_m)
        box = radius_box(lat, lon, radius_m)
        if box is None:  # around a pole or across the antimeridian: every row is tested
            return and_(exact)
        # the geometry GiST index finds the box, the geodesic test keeps what is within the radius
        envelope = text(
            "plate_reads.geom && ST_MakeEnvelope(:box_x0, :box_y0, :box_x1, :box_y1, 4326)"
        ).bindparams(box_x0=box[0], box_y0=box[1], box_x1=box[2], box_y1=box[3])
        return and_(envelope, exact)
    dlat = radius_m / _M_PER_DEG
    coslat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(dlat / coslat, 360.0)
    ky = _M_PER_DEG
    kx = _M_PER_DEG * coslat
    return and_(
        PlateReadRow.lat.between(lat - dlat, lat + dlat),
        PlateReadRow.lon.between(lon - dlon, lon + dlon),
        ((PlateReadRow.lat - lat) * ky) * ((PlateReadRow.lat - lat) * ky)
        + ((PlateReadRow.lon - lon) * kx) * ((PlateReadRow.lon - lon) * kx)
        <= radius_m * radius_m,
    )


def _check_polygon(polygon: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    pts = [(float(a), float(b)) for a, b in polygon]
    if len(pts) < 3:
        raise ValidationFailed("a polygon needs at least 3 (lat, lon) corners")
    for lat, lon in pts:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValidationFailed(f"polygon corner ({lat}, {lon}) is not a position")
    # checked here for both dialects: PostGIS would otherwise take a bad shape silently
    problem = _polygon_problem(pts)
    if problem is not None:
        raise ValidationFailed(problem)
    return pts


def _polygon_problem(pts: Sequence[tuple[float, float]]) -> str | None:
    """Why the ``(lat, lon)`` corners make no usable area, or None.

    A shape with no area (corners on one line, or repeated) is told apart from one whose edges
    cross or touch: both are invalid to shapely, but the fix differs.
    """
    import shapely
    from shapely.geometry import Polygon

    shape = Polygon([(lon, lat) for lat, lon in pts])
    if shape.is_valid:
        return None
    # the hull, not the shape: a crossing bowtie's two halves cancel to an area of 0 as well
    if shape.convex_hull.area == 0:
        return "the polygon has no area: its corners lie on one line (or repeat); give 3+ corners around one"
    reason = shapely.is_valid_reason(shape)
    if reason.startswith("Ring Self-intersection"):
        return "the polygon's outline touches itself at a corner; draw it as one simple loop"
    if reason.startswith("Self-intersection"):
        return "the polygon crosses itself; draw its corners in order around the area"
    return f"the polygon is not a valid area ({reason})"


def search_reads(
    session: Session,
    *,
    plate: str | None,
    mode: SearchMode = "exact",
    start: datetime | None = None,
    end: datetime | None = None,
    device_ids: Sequence[str] | None = None,
    near: tuple[float, float, float] | None = None,
    polygon: list[tuple[float, float]] | None = None,
    limit: int = 200,
) -> list[PlateReadRow]:
    """Reads matching every given condition, newest first.

    Parameters
    ----------
    plate, mode
        The plate query and how it is matched (see the module docstring);
        ``plate=None`` matches every plate.
    start, end
        ``start <= read_at < end`` (UTC, either may be None).
    device_ids
        Only reads of these cameras.
    near
        ``(lat, lon, radius_m)``: only reads within the radius.
    polygon
        ``[(lat, lon), …]``: only reads inside the polygon.
    limit
        At most this many reads (1 … 100 000).
    """
    if not 1 <= limit <= 100_000:
        raise ValidationFailed("limit must be between 1 and 100000")
    if start is not None and end is not None and start >= end:
        raise ValidationFailed(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    conds: list[ColumnElement[bool]] = []
    if start is not None:
        conds.append(PlateReadRow.read_at >= start)
    if end is not None:
        conds.append(PlateReadRow.read_at < end)
    if device_ids is not None:
        if not device_ids:
            return []
        conds.append(PlateReadRow.device_id.in_(list(device_ids)))
    if near is not None:
        conds.append(_near_filter(session, *near))
    pts: list[tuple[float, float]] | None = None
    if polygon is not None:
        pts = _check_polygon(polygon)
        lats, lons = [p[0] for p in pts], [p[1] for p in pts]
        if _dialect(session) == "postgresql":
            wkt = "POLYGON((" + ", ".join(f"{lon!r} {lat!r}" for lat, lon in [*pts, pts[0]]) + "))"
            conds.append(
                and_(
                    text("ST_Covers(ST_GeomFromText(:poly_wkt, 4326), plate_reads.geom)").bindparams(
                        poly_wkt=wkt
                    )
                )
            )
            pts = None
        else:
            conds.append(PlateReadRow.lat.between(min(lats), max(lats)))
            conds.append(PlateReadRow.lon.between(min(lons), max(lons)))
    plate_cond = [] if plate is None else [_plate_filter(session, plate, mode)]
    stmt = select(PlateReadRow).where(*plate_cond, *conds).order_by(*_NEWEST_FIRST)
    if pts is not None:
        return _filter_polygon(session, stmt, pts, limit)
    if plate is not None and mode == "partial":
        if _dialect(session) == "postgresql":
            return _newest_first(session, stmt, start, end, limit)
        pattern = partial_pattern(plate)
        if limit <= _FTS_WALK_MAX_LIMIT and (has_trigram(pattern) or pairs_match(pattern) is not None):
            found = _fts_newest_first(session, pattern, conds, limit)
            if found is not None:
                return found
    return list(session.scalars(stmt.limit(limit)))


_NEWEST_FIRST = (PlateReadRow.read_at.desc(), PlateReadRow.id)
_FTS_WALK_MAX_LIMIT = 10_000
_FTS_FIRST_PAGE = 256  # FTS rowids read by the first step of the walk (at least 2 x limit)
_FTS_PAGE_MAX = 8192  # and at most, per step
# the skipped rows are checked through the read_at index when it holds fewer than this many x the FTS
# matches left (an index entry costs about 0.1-0.25 us, a match 3-4 us: a row lookup each, at 10 M reads)
_TIME_INDEX_RATIO = 20.0
_IN_CHUNK = 10_000  # rowids per IN list


def _fts_newest_first(
    session: Session, pattern: str, conds: list[ColumnElement[bool]], limit: int
) -> list[PlateReadRow] | None:
    """SQLite partial search: walk the FTS5 matches newest rowid first, then check the rest by time.

    ``plate_reads.rowid IN (<every FTS match>)`` makes SQLite collect, fetch
    and sort every match (tens of thousands for ``123`` at 10 M reads) for
    the newest ``limit``. Rows are appended as reads arrive, so the rowid
    order is nearly the time order: the FTS index hands out its matches in
    descending rowid pages (cheap, it stops early) until ``limit`` of them
    pass the other conditions. Their ``limit``-th newest time :math:`t` then
    bounds what is missing: only a row under the lowest rowid walked with
    ``read_at >= t`` (a read stored before older ones: arrival jitter, a
    camera's clock ahead) can still belong to the answer. Those are fetched
    exactly — through the ``read_at`` index (about as many entries as rowids
    walked) or through the FTS matches left,
    whichever is estimated smaller — and one last query orders the union as
    :func:`search_reads` does, so the result is the same as the plain query's.

    Returns None when the candidates are too many for one query (more than
    30 000 bound values; the caller runs the plain query).
    """
    rowid: ColumnElement[int] = literal_column("plate_reads.rowid")
    expr = pairs_match(pattern)
    if expr is None:  # the trigram index answers LIKE itself
        fts_table, fts_where, fts_params = "plate_reads_fts", "plate LIKE :pattern", {"pattern": pattern}
    else:  # a superset from the pair tokens; LIKE on the plate keeps the matches
        fts_table, fts_params = "plate_reads_fts_pairs", {"m": expr}
        fts_where = "plate_reads_fts_pairs MATCH :m"
        conds = [*conds, PlateReadRow.plate.like(pattern)]
    keys = select(rowid, PlateReadRow.read_at).where(*conds)
    found: list[tuple[int, datetime]] = []
    page = max(2 * limit, _FTS_FIRST_PAGE)
    top, below, walked = 0, 2**63 - 1, 0
    while True:
        fts = (
            text(
                f"SELECT rowid AS rid FROM {fts_table} WHERE {fts_where} AND rowid < :below "
                "ORDER BY rowid DESC LIMIT :n"
            )
            .bindparams(below=below, n=page, **fts_params)
            .columns(column("rid", Integer))
            .subquery("fts")
        )
        # every walked rowid, with its time when the read passes the other conditions
        walk = select(fts.c.rid, PlateReadRow.read_at).select_from(
            fts.outerjoin(PlateReadRow, and_(rowid == fts.c.rid, *conds))
        )
        rows = [(int(r), t) for r, t in session.execute(walk)]
        if rows:
            top = max(top, max(r for r, _ in rows))
            below, walked = min(r for r, _ in rows), walked + len(rows)
            found.extend((r, t) for r, t in rows if t is not None)
        more = len(rows) == page  # else every match is walked
        if not more or len(found) >= limit:
            break
        page = min(page * 2, _FTS_PAGE_MAX)
    keep = [r for r, _ in found]
    if len(found) >= limit:  # only the newest `limit` (and their ties) can be in the answer
        oldest = sorted((t for _, t in found), reverse=True)[limit - 1]
        keep = [r for r, t in found if t >= oldest]
    if more and len(found) >= limit:  # matches left under `below`: any newer than `oldest`?
        # rows newer than `oldest` (read_at index entries) and matches left, at the walk's density
        newer_rows = (top - below + 1) * limit / len(found)
        left = walked * (below - 1) / max(top - below + 1, 1)
        newer = keys.where(PlateReadRow.read_at >= oldest)
        if newer_rows <= _TIME_INDEX_RATIO * left:
            # "+rowid": not the rowid range (nearly the whole table) but the read_at index, which holds
            # the rowid: the late rows come from the index alone (usually a few jittered reads), and
            # only they are read from the table
            unindexed = text("+plate_reads.rowid < :below").bindparams(below=below)
            late = list(session.scalars(select(rowid).where(PlateReadRow.read_at >= oldest, and_(unindexed))))
            for i in range(0, len(late), _IN_CHUNK):
                chunk = newer.where(rowid.in_(late[i : i + _IN_CHUNK]), PlateReadRow.plate.like(pattern))
                keep.extend(int(r) for r, _ in session.execute(chunk))
        else:
            newer = newer.where(
                text(
                    "plate_reads.rowid IN "
                    f"(SELECT rowid FROM {fts_table} WHERE {fts_where} AND rowid < :below)"
                ).bindparams(below=below, **fts_params)
            )
            keep.extend(int(r) for r, _ in session.execute(newer))
    if len(keep) > 30_000:
        return None
    if not keep:
        return []
    final = select(PlateReadRow).where(rowid.in_(keep)).order_by(*_NEWEST_FIRST).limit(limit)
    return list(session.scalars(final))


def _newest_first(
    session: Session, stmt: Any, start: datetime | None, end: datetime | None, limit: int
) -> list[PlateReadRow]:
    """Run ``stmt`` over time windows back from ``end``, newest first, until ``limit`` rows are found.

    A common partial plate (``123``) matches tens of thousands of reads at
    10 M; sorting them all for the newest 100 takes a second. Windows back
    from ``end`` — the rest of its UTC day, then whole UTC days (then the
    rest) — touch only their daily partitions, each partition once (its
    trigram index's pending list of fresh entries is read by every query
    that touches it), and stop as soon as the newest ``limit`` are known.
    Each window after the first is as many days as the matches found so far
    say are needed for the rest, with half as much again to spare
    (:func:`_next_window_days`): a common plate stays within a day or two, a
    rare one (``A?C1*``, a few a day) takes two or three queries instead of
    one per doubling — each query costs a few milliseconds of planning and
    of pattern analysis per partition, whatever it finds.
    """
    top = (end or datetime.now(UTC)).astimezone(UTC)
    day0 = top.replace(hour=0, minute=0, second=0, microsecond=0)
    out: list[PlateReadRow] = []
    hi: datetime | None = end  # None: no upper bound for the first window
    lo: datetime | None = day0
    back = timedelta(days=1)
    while len(out) < limit:
        last = (start is not None and lo is not None and lo <= start) or back > timedelta(days=64)
        if last:
            lo = start  # the last window: everything left (unbounded when no start)
        q = stmt
        if lo is not None:
            q = q.where(PlateReadRow.read_at >= lo)
        if hi is not None:
            q = q.where(PlateReadRow.read_at < hi)
        out.extend(session.scalars(q.limit(limit - len(out))))
        if last or lo is None:
            break
        covered = max((top - lo).total_seconds() / 86400.0, 1.0 / 24.0)
        back = timedelta(days=_next_window_days(len(out), limit, covered, back.days))
        hi, lo = lo, lo - back
    return out


def _next_window_days(found: int, limit: int, covered_days: float, last_days: int) -> int:
    """Whole days for the next window of :func:`_newest_first`.

    ``found`` matches in the ``covered_days`` searched so far predict that the
    ``limit - found`` still missing lie within ``(limit - found) / rate``
    days; the window takes 1.5 times that (at least a day). With nothing
    found yet, four times the last window. Above 64 days the next window is
    the last (everything left).

    Examples
    --------
    >>> _next_window_days(20, 100, 1.0, 1)  # 20 a day: 80 more in 4 days, 6 with the margin
    6
    >>> _next_window_days(0, 100, 0.2, 1), _next_window_days(99, 100, 0.5, 1)
    (4, 1)
    """
    if found == 0:
        return min(4 * max(last_days, 1), 65)
    need = (limit - found) * covered_days / found * 1.5
    return max(1, min(math.ceil(need), 65))


def _filter_polygon(
    session: Session, stmt: Any, pts: list[tuple[float, float]], limit: int
) -> list[PlateReadRow]:
    from shapely import intersects_xy, prepare
    from shapely.geometry import Polygon

    shape = Polygon([(lon, lat) for lat, lon in pts])
    problem = _polygon_problem(pts)
    if problem is not None:
        raise ValidationFailed(problem)
    prepare(shape)
    out: list[PlateReadRow] = []
    page = max(4 * limit, 1000)
    offset = 0
    while len(out) < limit:
        rows = list(session.scalars(stmt.offset(offset).limit(page)))
        for row in rows:
            if row.lat is not None and row.lon is not None and intersects_xy(shape, row.lon, row.lat):
                out.append(row)
                if len(out) == limit:
                    break
        if len(rows) < page:
            break
        offset += page
    return out


def reads_near(
    session: Session,
    lat: float,
    lon: float,
    radius_m: float,
    start: datetime | None,
    end: datetime | None,
    limit: int = 200,
) -> list[PlateReadRow]:
    """Reads within ``radius_m`` metres of (``lat``, ``lon``) in ``[start, end)``, newest first."""
    return search_reads(
        session, plate=None, mode="exact", start=start, end=end, near=(lat, lon, radius_m), limit=limit
    )


def _near_in(
    session: Session, lat: float, lon: float, radius_m: float, start: datetime | None, end: datetime | None
) -> list[ColumnElement[bool]]:
    conds = [_near_filter(session, lat, lon, radius_m)]
    if start is not None:
        conds.append(PlateReadRow.read_at >= start)
    if end is not None:
        conds.append(PlateReadRow.read_at < end)
    return conds


def hit_reads_near(
    session: Session,
    lat: float,
    lon: float,
    radius_m: float,
    start: datetime | None,
    end: datetime | None,
    limit: int = 200,
) -> list[PlateReadRow]:
    """Reads that hit a hotlist within ``radius_m`` metres of (``lat``, ``lon``) in ``[start, end)``.

    Newest first. Those reads are alerts already (see :mod:`rtcc.plates.hits`); every other read
    is only found by a search with a purpose and a case number.
    """
    conds = [*_near_in(session, lat, lon, radius_m, start, end), PlateReadRow.hit.is_(True)]
    return list(session.scalars(select(PlateReadRow).where(*conds).order_by(*_NEWEST_FIRST).limit(limit)))


def count_reads_near(
    session: Session,
    lat: float,
    lon: float,
    radius_m: float,
    start: datetime | None,
    end: datetime | None,
    *,
    hit: bool | None = None,
) -> int:
    """How many reads lie within ``radius_m`` metres of a point in ``[start, end)``.

    ``hit`` counts only the reads that hit a hotlist (True) or that hit none (False); None counts
    all. A count names no vehicle: the incident packet shows it instead of the reads.
    """
    conds = _near_in(session, lat, lon, radius_m, start, end)
    if hit is not None:
        conds.append(PlateReadRow.hit.is_(hit))
    return int(session.scalar(select(func.count()).select_from(PlateReadRow).where(*conds)) or 0)


def purge_reads(
    session: Session, older_than: datetime, keep_ids: Collection[str] | None = None
) -> tuple[int, list[str]]:
    """Delete reads older than ``older_than`` that hit nothing and are not in ``keep_ids``.

    Reads with ``hit`` set and reads whose id is in ``keep_ids`` (e.g. tied to
    an open case) are kept.

    Returns
    -------
    tuple[int, list[str]]
        The number of reads deleted, and the media refs no remaining read uses
        any more (the caller deletes those files after committing).
    """
    keep = {str(k) for k in keep_ids or ()}
    deleted = 0
    freed: set[str] = set()
    last: tuple[datetime, uuid.UUID] | None = None
    while True:
        q = (
            select(_T.c.id, _T.c.read_at, _T.c.crop_ref, _T.c.image_ref)
            .where(_T.c.read_at < older_than, _T.c.hit.is_(False))
            .order_by(_T.c.read_at, _T.c.id)
            .limit(_PURGE_CHUNK)
        )
        if last is not None:
            q = q.where(or_(_T.c.read_at > last[0], and_(_T.c.read_at == last[0], _T.c.id > last[1])))
        batch = session.execute(q).all()
        if not batch:
            break
        last = (batch[-1].read_at, batch[-1].id)
        gone = [r for r in batch if str(r.id) not in keep]
        if gone:
            ids = [r.id for r in gone]
            # the batch's time span too: SQLite finds the rows through its (read_at, id) key
            span = _T.c.read_at.between(batch[0].read_at, batch[-1].read_at)
            session.execute(delete(_T).where(span, _T.c.id.in_(ids), _T.c.read_at < older_than))
            deleted += len(gone)
            for r in gone:
                freed.update(ref for ref in (r.crop_ref, r.image_ref) if ref)
        if len(batch) < _PURGE_CHUNK:
            break
    if not freed:
        return deleted, []
    still: set[str] = set()
    refs = sorted(freed)
    for i in range(0, len(refs), 1000):
        chunk = refs[i : i + 1000]
        for crop, image in session.execute(
            select(_T.c.crop_ref, _T.c.image_ref).where(
                or_(_T.c.crop_ref.in_(chunk), _T.c.image_ref.in_(chunk))
            )
        ):
            still.update(x for x in (crop, image) if x)
    return deleted, sorted(freed - still)


def count_reads(session: Session) -> int:
    """How many reads are stored."""
    return int(session.scalar(select(func.count()).select_from(_T)) or 0)
