"""The event log: record events once, list them, find them near a point.

Plain functions taking a :class:`sqlalchemy.orm.Session`; they never commit
(the caller's transaction does, e.g. :meth:`rtcc.store.db.Store.write`).

Idempotency
-----------
An event is one row keyed by ``(event_id, occurred_at)``. Recording the same
event again (same id and time) is a no-op — ``INSERT … ON CONFLICT DO
NOTHING`` on both dialects — so redelivered bus messages are harmless. On
PostgreSQL the key is the primary key of the day's partition.

Distances
---------
Distances are great-circle distances on a sphere of radius
:data:`EARTH_RADIUS_M` (PostGIS's sphere, ``use_spheroid = false``), so both
dialects give the same answer to the metre; on the WGS84 spheroid the true
distance differs by at most ~0.5 %.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from rtcc.errors import NotFound
from rtcc.events import Event, parse_event
from rtcc.store.tables import EventRecord

EARTH_RADIUS_M = 6_371_008.7714150598
"""Mean Earth radius in metres (the sphere PostGIS uses for geography)."""

_TABLE = cast(Table, EventRecord.__table__)


@dataclass(frozen=True)
class NearEvent:
    """An event found by :func:`events_near` and its distance from the point, in metres."""

    record: EventRecord
    distance_m: float


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _row(event: Event, received_at: datetime) -> dict[str, Any]:
    pos = event.position
    return {
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "type": event.type,
        "source": event.source,
        "device_id": event.device_id,
        "lat": pos.lat if pos is not None else None,
        "lon": pos.lon if pos is not None else None,
        "received_at": received_at,
        "payload": event.model_dump(mode="json"),
    }


_PG_CHUNK_ROWS = 10_000
_PG_CHUNK_BYTES = 32 * 1024 * 1024
"""Most rows, and most bytes of JSON, in one PostgreSQL insert statement."""

_PG_INSERT = text(
    "WITH ins AS ("
    "INSERT INTO events (event_id, occurred_at, type, source, device_id, lat, lon, "
    "received_at, payload) "
    "SELECT u.event_id, u.occurred_at, u.type, u.source, u.device_id, u.lat, u.lon, "
    "u.received_at, u.payload "
    "FROM json_to_recordset(CAST(:rows AS json)) AS u(event_id uuid, occurred_at timestamptz, "
    "type text, source text, device_id text, lat float8, lon float8, received_at timestamptz, "
    "payload jsonb) "
    "ON CONFLICT DO NOTHING RETURNING 1"
    ") SELECT count(*) FROM ins"
)
"""One statement of fixed shape whatever the batch size, whose rows travel as
one JSON document: the driver neither builds and parses a huge ``VALUES``
list nor escapes arrays element by element (either costs more than the
database's work in psycopg). Floats survive exactly (shortest round-trip
repr), times as ISO 8601 with their offset."""


def _no_nul(value: Any) -> Any:
    """``value`` with U+0000 in strings replaced by U+FFFD (``jsonb`` refuses U+0000)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_no_nul(v) for v in value]
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    return value


def _pg_json(r: dict[str, Any]) -> str:
    doc = _pg_json_raw(r)
    if "\\u0000" in doc:  # rare: keep one bad string from failing the whole batch
        doc = _pg_json_raw({**r, "payload": _no_nul(r["payload"])})
    return doc


def _pg_json_raw(r: dict[str, Any]) -> str:
    return json.dumps(
        {
            "event_id": str(r["event_id"]),
            "occurred_at": r["occurred_at"].isoformat(),
            "type": r["type"],
            "source": r["source"],
            "device_id": r["device_id"],
            "lat": r["lat"],
            "lon": r["lon"],
            "received_at": r["received_at"].isoformat(),
            "payload": r["payload"],
        },
        separators=(",", ":"),
    )


def _record_pg(session: Session, rows: list[dict[str, Any]]) -> int:
    new = 0
    chunk: list[str] = []
    size = 0

    def flush() -> int:
        params = {"rows": "[" + ",".join(chunk) + "]"}
        return int(session.execute(_PG_INSERT, params).scalar_one())

    for r in rows:
        doc = _pg_json(r)
        if chunk and (len(chunk) >= _PG_CHUNK_ROWS or size + len(doc) > _PG_CHUNK_BYTES):
            new += flush()
            chunk, size = [], 0
        chunk.append(doc)
        size += len(doc) + 1
    if chunk:
        new += flush()
    return new


def _record_sqlite(session: Session, rows: list[dict[str, Any]]) -> int:
    stmt = sqlite.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.event_id)
    return len(session.execute(stmt, rows).all())


def record_events(session: Session, events: Iterable[Event], *, received_at: datetime | None = None) -> int:
    """Store events not stored yet; returns how many were new.

    One ``INSERT … ON CONFLICT DO NOTHING`` for many rows: on PostgreSQL an
    ``INSERT … SELECT FROM json_to_recordset(<the rows as one JSON document>)``
    (up to 10 000 rows or 32 MB a statement), on SQLite an ``executemany``
    that SQLAlchemy pages into multi-row ``VALUES``. Duplicates — already
    stored, or repeated within ``events`` — are skipped and not counted.
    ``received_at`` (default: now) is stamped on the first new row, and one microsecond more on each
    next one: the order of ``events`` is kept, so an update recorded in the same batch as what it
    updates (same ``occurred_at``) still lists after it (:func:`list_events`). The payload is
    ``event.model_dump(mode="json")``; on PostgreSQL a U+0000 character in it
    (which ``jsonb`` cannot hold) is stored as U+FFFD.
    """
    at = received_at or datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    dialect = _dialect(session)
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"events_repo supports sqlite and postgresql, not {dialect}")
    rows: list[dict[str, Any]] = []
    seen: set[tuple[UUID, datetime]] = set()
    for ev in events:
        key = (ev.event_id, ev.occurred_at)
        if key in seen:
            continue
        seen.add(key)
        rows.append(_row(ev, at + timedelta(microseconds=len(rows))))  # keeps the batch's order
    if not rows:
        return 0
    if dialect == "postgresql":
        return _record_pg(session, rows)
    return _record_sqlite(session, rows)


def _filters(
    *,
    types: Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
    device_id: str | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if types is not None:
        where.append(EventRecord.type.in_(list(types)))
    if since is not None:
        where.append(EventRecord.occurred_at >= since)
    if until is not None:
        where.append(EventRecord.occurred_at < until)
    if device_id is not None:
        where.append(EventRecord.device_id == device_id)
    return where


def list_events(
    session: Session,
    *,
    types: Collection[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    device_id: str | None = None,
    limit: int = 100,
    before_id: UUID | None = None,
    offset: int = 0,
) -> list[EventRecord]:
    """Events newest first (by ``occurred_at``, then the latest stored, then ``event_id``).

    An update published with the time of what it updates (a reviewed gunshot incident keeps the
    shot's time) ties on ``occurred_at`` with the original; ``received_at`` puts it after it, so a
    client that replays the history oldest first ends on the update.

    ``since`` is inclusive, ``until`` exclusive. Page with ``before_id`` (the
    ``event_id`` of the last event of the previous page: keyset paging,
    stable while new events arrive) or with ``offset``.

    Raises
    ------
    rtcc.errors.NotFound
        When ``before_id`` names no stored event.
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must be >= 0")
    where = _filters(types=types, since=since, until=until, device_id=device_id)
    if before_id is not None:
        last = session.execute(
            select(EventRecord.occurred_at, EventRecord.received_at)
            .where(EventRecord.event_id == before_id)
            .order_by(EventRecord.occurred_at.desc())
            .limit(1)
        ).first()
        if last is None:
            raise NotFound(f"no event {before_id} to page from")
        t, r = last
        where.append(
            or_(
                EventRecord.occurred_at < t,
                and_(
                    EventRecord.occurred_at == t,
                    or_(
                        EventRecord.received_at < r,
                        and_(EventRecord.received_at == r, EventRecord.event_id < before_id),
                    ),
                ),
            )
        )
    stmt = (
        select(EventRecord)
        .where(*where)
        .order_by(EventRecord.occurred_at.desc(), EventRecord.received_at.desc(), EventRecord.event_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(stmt).scalars())


def count_events(session: Session, type: str | None = None) -> int:
    """How many events are stored (of ``type``, when given)."""
    stmt = select(func.count()).select_from(_TABLE)
    if type is not None:
        stmt = stmt.where(EventRecord.type == type)
    return int(session.execute(stmt).scalar_one())


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on the :data:`EARTH_RADIUS_M` sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _bbox(lat: float, lon: float, radius_m: float) -> list[ColumnElement[bool]]:
    """SQL conditions for a lat/lon box holding every point within ``radius_m``."""
    ang = radius_m / EARTH_RADIUS_M  # angular radius, radians
    pad = 1e-9  # degrees; keeps points exactly on the circle inside the box
    dlat = math.degrees(ang) + pad
    where: list[ColumnElement[bool]] = [
        EventRecord.lat.is_not(None),
        EventRecord.lon.is_not(None),
        EventRecord.lat.between(lat - dlat, lat + dlat),
    ]
    if ang >= math.pi or abs(lat) + math.degrees(ang) >= 90.0:
        return where  # the circle reaches a pole: every longitude
    dlon = math.degrees(math.asin(min(1.0, math.sin(ang) / math.cos(math.radians(lat))))) + pad
    lo, hi = lon - dlon, lon + dlon
    if lo < -180.0:
        where.append(or_(EventRecord.lon >= lo + 360.0, EventRecord.lon <= hi))
    elif hi > 180.0:
        where.append(or_(EventRecord.lon >= lo, EventRecord.lon <= hi - 360.0))
    else:
        where.append(EventRecord.lon.between(lo, hi))
    return where


def events_near(
    session: Session,
    lat: float,
    lon: float,
    radius_m: float,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    types: Collection[str] | None = None,
    limit: int = 1000,
) -> list[NearEvent]:
    """Events within ``radius_m`` metres of (``lat``, ``lon``), nearest first.

    PostgreSQL: ``ST_DWithin`` on ``geom::geography`` (served by the GiST
    index ``ix_events_geog``). SQLite: a lat/lon bounding box in SQL, then the
    exact great-circle distance in Python. Ties in distance are newest first.
    """
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError("lat must be in [-90, 90] and lon in [-180, 180]")
    if not math.isfinite(radius_m) or radius_m < 0:
        raise ValueError("radius_m must be a finite number >= 0")
    if limit < 0:
        raise ValueError("limit must be >= 0")
    where = _filters(types=types, since=since, until=until)
    if _dialect(session) == "postgresql":
        return _near_pg(session, lat, lon, radius_m, where, limit)
    stmt = select(EventRecord).where(*where, *_bbox(lat, lon, radius_m))
    found: list[NearEvent] = []
    for rec in session.execute(stmt).scalars():
        assert rec.lat is not None and rec.lon is not None  # filtered in SQL
        d = _haversine_m(lat, lon, rec.lat, rec.lon)
        if d <= radius_m:
            found.append(NearEvent(rec, d))
    found.sort(key=lambda n: (n.distance_m, -n.record.occurred_at.timestamp()))
    return found[:limit]


def _near_pg_stmt(
    lat: float, lon: float, radius_m: float, where: list[ColumnElement[bool]], limit: int
) -> Select[EventRecord, float]:
    geog: ColumnElement[Any] = literal_column("events.geom::geography")
    xy = func.ST_MakePoint(bindparam("near_lon", lon), bindparam("near_lat", lat))
    point = func.geography(func.ST_SetSRID(xy, 4326))
    dist = func.ST_Distance(geog, point, False, type_=Float).label("distance_m")
    return (
        select(EventRecord, dist)
        .where(*where, func.ST_DWithin(geog, point, radius_m, False))
        .order_by(dist, EventRecord.occurred_at.desc())
        .limit(limit)
    )


def _near_pg(
    session: Session,
    lat: float,
    lon: float,
    radius_m: float,
    where: list[ColumnElement[bool]],
    limit: int,
) -> list[NearEvent]:
    stmt = _near_pg_stmt(lat, lon, radius_m, where, limit)
    return [NearEvent(rec, float(d)) for rec, d in session.execute(stmt)]


def to_event(record: EventRecord) -> Event:
    """The typed event a stored row holds."""
    return parse_event(record.payload)


def delete_events_before(
    session: Session,
    types: Collection[str],
    before: datetime,
    *,
    dry_run: bool = False,
    kinds: Collection[str] | None = None,
) -> dict[str, int]:
    """Delete (or, dry, count) the stored events of ``types`` that occurred before ``before``.

    Retention's purge of event-log copies whose record lives elsewhere (a
    plate read's is ``plate_reads``, a hit's is ``hotlist_hits``, a plate
    alert's is ``alerts``) and of data kept for a time only (device
    heartbeats, the positions of officers' cameras). One ``DELETE`` per type
    in the database, bounded by ``type`` and ``occurred_at`` (the index
    ``ix_events_type_time``; on PostgreSQL the day partitions): no row is
    loaded into Python.

    Parameters
    ----------
    session
        The caller's session (not committed here).
    types
        The event types to delete.
    before
        Events that occurred before this (timezone-aware) time go.
    dry_run
        Count only; delete nothing.
    kinds
        When given, only the events whose payload ``kind`` is one of these
        (e.g. :data:`rtcc.events.PLATE_ALERT_KINDS` for ``alert`` events).

    Returns
    -------
    dict[str, int]
        The count per type (every type of ``types``, zero included).
    """
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    counts: dict[str, int] = {}
    for t in types:
        where: tuple[ColumnElement[bool], ...] = (EventRecord.type == t, EventRecord.occurred_at < before)
        if kinds is not None:
            where += (EventRecord.payload["kind"].as_string().in_(sorted(kinds)),)
        if dry_run:
            n = session.execute(select(func.count()).select_from(_TABLE).where(*where)).scalar_one()
        else:
            res: Any = session.execute(_TABLE.delete().where(*where))
            n = res.rowcount
        counts[t] = int(n or 0)
    return counts


_AUDIO_CHUNK = 500


def pulse_audio_ids(session: Session, before: datetime) -> list[tuple[UUID, datetime]]:
    """Keys ``(event_id, occurred_at)`` of the pulses before ``before`` that still hold audio."""
    has_audio = EventRecord.payload["audio_flac_b64"].as_string().is_not(None)
    q = (
        select(EventRecord.event_id, EventRecord.occurred_at)
        .where(EventRecord.type == "pulse", EventRecord.occurred_at < before, has_audio)
        .order_by(EventRecord.occurred_at, EventRecord.event_id)
    )
    return [(r.event_id, r.occurred_at) for r in session.execute(q)]


def strip_pulse_audio(session: Session, keys: Collection[tuple[UUID, datetime]]) -> int:
    """Set ``audio_flac_b64`` to null in the stored payload of these pulses; returns how many changed.

    The rest of each pulse (arrival time, level, SNR, duration, sensor,
    position) stays, so located shots and statistics are unaffected. The
    update runs in the database (``jsonb_set`` on PostgreSQL, ``json_set``
    on SQLite): the audio is never loaded into Python.
    """
    if not keys:
        return 0
    dialect = _dialect(session)
    if dialect == "postgresql":
        new_payload: Any = func.jsonb_set(
            EventRecord.payload, literal_column("'{audio_flac_b64}'"), literal_column("'null'::jsonb")
        )
    else:
        new_payload = func.json_set(EventRecord.payload, "$.audio_flac_b64", func.json("null"))
    ordered = sorted(keys, key=lambda k: (k[1], k[0]))
    changed = 0
    for i in range(0, len(ordered), _AUDIO_CHUNK):
        chunk = ordered[i : i + _AUDIO_CHUNK]
        stmt = (
            _TABLE.update()
            .where(
                EventRecord.type == "pulse",
                # the time span lets PostgreSQL prune partitions
                EventRecord.occurred_at.between(min(t for _, t in chunk), max(t for _, t in chunk)),
                EventRecord.event_id.in_([e for e, _ in chunk]),
            )
            .values(payload=new_payload)
        )
        done: Any = session.execute(stmt)
        changed += int(done.rowcount or 0)
    return changed
