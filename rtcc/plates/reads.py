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
    a ``pg_trgm`` GIN index, SQLite from an FTS5 ``trigram`` index.
``lookalike``
    The plates are equal after folding look-alike characters
    (:func:`rtcc.plates.matching.skeleton`: 0/O/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G).

Areas
-----
``near=(lat, lon, radius_m)`` keeps reads within ``radius_m`` metres
(PostGIS ``ST_DWithin`` on geography; on SQLite a local equirectangular
distance, within 0.1 % below 50 km). ``polygon=[(lat, lon), …]`` keeps reads
inside the polygon (PostGIS ``ST_Covers``; on SQLite a bounding box in SQL
then an exact point-in-polygon test with Shapely).
"""

from __future__ import annotations

import math
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
from rtcc.events import PlateRead
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


def _sqlite_time(t: datetime) -> str:
    """A UTC time as :class:`rtcc.store.tables.UTCDateTime` stores it on SQLite."""
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_rows(reads: Sequence[PlateRead], now: datetime) -> list[tuple[Any, ...]]:
    """The SQLite column values (in :data:`_COLUMNS` order) of reads, as SQLAlchemy would store them."""
    created = _sqlite_time(now)
    rows = []
    for r in reads:
        plate = normalize_plate(r.plate)
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
        plate = normalize_plate(r.plate)
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


def insert_reads(session: Session, reads: Sequence[PlateRead]) -> int:
    """Store reads in bulk, each once (keyed by its event id); returns how many were new.

    Bulk paths below the ORM (the reads are already validated events): on
    SQLite one ``INSERT OR IGNORE`` ``executemany``, then the new rows' plates
    into the FTS5 trigram index in one statement (this is the only writer of
    that index: insert reads through this function); on PostgreSQL ``COPY``
    into a temporary table, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
    Runs in the session's transaction; the caller commits.
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
            # new rows get rowids above the old maximum: index their plates in one statement
            cur.execute(
                "INSERT INTO plate_reads_fts(rowid, plate) "
                "SELECT rowid, plate FROM plate_reads WHERE rowid > ?",
                (top,),
            )
        finally:
            cur.close()
        return int(inserted)
    if dialect != "postgresql":  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database {dialect}")
    with raw.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGE} "
            "(LIKE plate_reads INCLUDING DEFAULTS EXCLUDING GENERATED) ON COMMIT DELETE ROWS"
        )
        for i in range(0, len(reads), _INSERT_CHUNK):
            with cur.copy(f"COPY {_PG_STAGE} ({_COLS_SQL}) FROM STDIN") as copy:
                for row in pg_rows(reads[i : i + _INSERT_CHUNK], now):
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO plate_reads ({_COLS_SQL}) SELECT {_COLS_SQL} FROM {_PG_STAGE} "
                "ON CONFLICT (id, read_at) DO NOTHING"
            )
            inserted += max(cur.rowcount, 0)
            cur.execute(f"TRUNCATE {_PG_STAGE}")
    return inserted


def get_read(session: Session, read_id: str | uuid.UUID) -> PlateReadRow | None:
    """One read by its id (the PlateRead event id), or None."""
    rid = _uuid(read_id)
    if rid is None:
        return None
    return session.scalars(select(PlateReadRow).where(PlateReadRow.id == rid).limit(1)).first()


def mark_hit(session: Session, read_id: str | uuid.UUID) -> bool:
    """Mark a read as having hit a hotlist entry (retention keeps it); False if no such read."""
    rid = _uuid(read_id)
    if rid is None:
        return False
    result = session.execute(update(_T).where(_T.c.id == rid).values(hit=True))
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


def _plate_filter(session: Session, plate: str, mode: SearchMode) -> ColumnElement[bool]:
    if mode == "exact":  # through the plate_key index: the look-alike group, then the plate
        exact = _need(normalize_plate(plate))
        return and_(PlateReadRow.plate_key == skeleton(exact), PlateReadRow.plate == exact)
    if mode == "lookalike":
        return PlateReadRow.plate_key == skeleton(_need(normalize_plate(plate)))
    if mode == "partial":
        pattern = partial_pattern(plate)
        if _dialect(session) == "sqlite":
            return and_(
                text(
                    "plate_reads.rowid IN (SELECT rowid FROM plate_reads_fts WHERE plate LIKE :pattern)"
                ).bindparams(pattern=pattern)
            )
        # the pattern inline, not a bind parameter: a prepared statement's generic plan cannot know
        # whether the trigram index fits it (psycopg prepares repeated queries) and scans by time
        return PlateReadRow.plate.like(bindparam("plate_pattern", pattern, literal_execute=True))
    raise ValidationFailed(f"unknown search mode {mode!r}; one of exact, partial, lookalike")


def _need(plate: str) -> str:
    if not plate:
        raise ValidationFailed("the plate has no letters or digits")
    return plate


def _near_filter(session: Session, lat: float, lon: float, radius_m: float) -> ColumnElement[bool]:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (0 < radius_m <= 1_000_000):
        raise ValidationFailed("near needs -90 <= lat <= 90, -180 <= lon <= 180 and 0 < radius_m <= 1000 km")
    if _dialect(session) == "postgresql":
        return and_(
            text(
                "ST_DWithin(plate_reads.geom::geography, "
                "ST_SetSRID(ST_MakePoint(:near_lon, :near_lat), 4326)::geography, :near_r)"
            ).bindparams(near_lon=lon, near_lat=lat, near_r=radius_m)
        )
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
    return pts


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
        if limit <= _FTS_WALK_MAX_LIMIT:
            found = _fts_newest_first(session, partial_pattern(plate), conds, limit)
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
    keys = select(rowid, PlateReadRow.read_at).where(*conds)
    found: list[tuple[int, datetime]] = []
    page = max(2 * limit, _FTS_FIRST_PAGE)
    top, below, walked = 0, 2**63 - 1, 0
    while True:
        fts = (
            text(
                "SELECT rowid AS rid FROM plate_reads_fts WHERE plate LIKE :pattern AND rowid < :below "
                "ORDER BY rowid DESC LIMIT :n"
            )
            .bindparams(pattern=pattern, below=below, n=page)
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
            # "+rowid": not the rowid range (nearly the whole table) but the read_at index
            unindexed = text("+plate_reads.rowid < :below").bindparams(below=below)
            newer = newer.where(and_(unindexed), PlateReadRow.plate.like(pattern))
        else:
            newer = newer.where(
                text(
                    "plate_reads.rowid IN "
                    "(SELECT rowid FROM plate_reads_fts WHERE plate LIKE :pattern AND rowid < :below)"
                ).bindparams(pattern=pattern, below=below)
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
    """Run ``stmt`` over growing time windows, newest first, until ``limit`` rows are found.

    A common partial plate (``123``) matches tens of thousands of reads at
    10 M; sorting them all for the newest 100 takes a second. Windows of 1,
    2, 4, … days back from ``end`` (then the rest) touch only their daily
    partitions and stop as soon as the newest ``limit`` are known; a rare
    plate costs one cheap index probe per window.
    """
    top = end or datetime.now(UTC) + timedelta(days=1)
    out: list[PlateReadRow] = []
    hi: datetime | None = end  # None: no upper bound for the first window
    width = timedelta(days=1)
    while len(out) < limit:
        lo: datetime | None = top - width
        last = (start is not None and top - width <= start) or width > timedelta(days=64)
        if last:
            lo = start  # the last window: everything left (unbounded when no start)
        q = stmt
        if lo is not None:
            q = q.where(PlateReadRow.read_at >= lo)
        if hi is not None:
            q = q.where(PlateReadRow.read_at < hi)
        out.extend(session.scalars(q.limit(limit - len(out))))
        if last:
            break
        hi, width = lo, width * 2
    return out


def _filter_polygon(
    session: Session, stmt: Any, pts: list[tuple[float, float]], limit: int
) -> list[PlateReadRow]:
    from shapely import intersects_xy, prepare
    from shapely.geometry import Polygon

    shape = Polygon([(lon, lat) for lat, lon in pts])
    if not shape.is_valid:
        raise ValidationFailed("the polygon crosses itself")
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
            session.execute(delete(_T).where(_T.c.id.in_(ids), _T.c.read_at < older_than))
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
