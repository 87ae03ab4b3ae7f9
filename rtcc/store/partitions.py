"""Daily partitions of the PostgreSQL ``events`` table.

On PostgreSQL ``events`` is ``PARTITION BY RANGE (occurred_at)`` with one
partition per UTC day, named ``events_YYYYMMDD`` and covering
``[day 00:00 UTC, next day 00:00 UTC)``, plus ``events_default``, which takes
every row no daily partition covers, so no event is ever refused.

The migration creates the partitions for today-2 … today+7; the application
calls :func:`ensure_event_partitions` once a day (and at start-up) for the
days ahead, e.g. ``ensure_event_partitions(conn, date.today(), 8)``, so rows
normally land in their own day's partition. When a day's rows already sit in
the default partition (the center was down for a week, or events arrived with
an old or future timestamp), creating that day's partition would fail in
PostgreSQL; :func:`ensure_event_partitions` moves those rows out of the
default partition and back in after creating the partition, in the same
transaction.

On SQLite these functions do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

PARENT = "events"
DEFAULT_PARTITION = "events_default"
_LOCK_KEY = 0x7274_6363_6576  # "rtccev": serialises partition maintenance
_COLUMNS = "event_id, occurred_at, type, source, device_id, lat, lon, received_at, payload"
"""The stored (non-generated) columns of ``events``, for moving rows."""

PARTITIONED: dict[str, tuple[str, str]] = {
    PARENT: ("occurred_at", _COLUMNS),
    "plate_reads": (
        "read_at",
        "id, read_at, device_id, lat, lon, heading_deg, direction, plate, plate_key, region, "
        "confidence, crop_ref, image_ref, hit, created_at",
    ),
}
"""Day-partitioned tables: name -> (partition key column, stored columns for moving rows).

Every function takes ``parent`` (default ``events``); ``plate_reads`` is partitioned the same way.
"""


def partition_name(day: date, parent: str = PARENT) -> str:
    """``<parent>_YYYYMMDD`` (``events_YYYYMMDD`` by default)."""
    return f"{parent}_{day:%Y%m%d}"


def _bounds(day: date) -> tuple[datetime, datetime]:
    lo = datetime.combine(day, time(0), tzinfo=UTC)
    return lo, lo + timedelta(days=1)


@dataclass(frozen=True)
class Partition:
    """One partition of ``events``; ``day`` is None for the default partition."""

    name: str
    day: date | None
    rows: int | None = None


def _dialect(conn: Connection | Session) -> str:
    if isinstance(conn, Session):
        return conn.get_bind().dialect.name
    return conn.dialect.name


def event_partitions(conn: Connection | Session, parent: str = PARENT) -> list[Partition]:
    """The partitions of ``parent`` (daily ones by day, then the default)."""
    if _dialect(conn) != "postgresql":
        return []
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE p.relname = :parent AND n.nspname = current_schema()"
        ),
        {"parent": parent},
    ).scalars()
    out: list[Partition] = []
    default: Partition | None = None
    for name in rows:
        if name == f"{parent}_default":
            default = Partition(name, None)
            continue
        try:
            day = datetime.strptime(name[len(parent) + 1 :], "%Y%m%d").date()
        except ValueError:
            continue
        out.append(Partition(name, day))
    out.sort(key=lambda p: p.day or date.min)
    if default is not None:
        out.append(default)
    return out


def ensure_default_partition(conn: Connection | Session, parent: str = PARENT) -> None:
    """Create ``<parent>_default`` (``events_default``) if missing (PostgreSQL only)."""
    if _dialect(conn) != "postgresql":
        return
    conn.execute(text(f"CREATE TABLE IF NOT EXISTS {parent}_default PARTITION OF {parent} DEFAULT"))


def ensure_event_partitions(
    conn: Connection | Session, start: date, days: int, parent: str = PARENT
) -> list[str]:
    """Make sure the daily partitions for ``start`` … ``start + days - 1`` exist.

    Idempotent and safe to run from several processes at once (an advisory
    lock serialises callers). Rows of those days found in the default
    partition are moved into the new partition. Runs in the caller's
    transaction; the caller commits. Does nothing on SQLite.

    Returns
    -------
    list[str]
        The names of the partitions created by this call.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    if _dialect(conn) != "postgresql" or days == 0:
        return []
    key_col, columns = PARTITIONED[parent]
    default_partition = f"{parent}_default"
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    existing = {p.name for p in event_partitions(conn, parent)}
    has_default = default_partition in existing
    created: list[str] = []
    for i in range(days):
        day = start + timedelta(days=i)
        name = partition_name(day, parent)
        if name in existing:
            continue
        lo, hi = _bounds(day)
        params = {"lo": lo, "hi": hi}
        moved = False
        if has_default:
            stray = conn.execute(
                text(
                    f"SELECT EXISTS (SELECT 1 FROM {default_partition} "
                    f"WHERE {key_col} >= :lo AND {key_col} < :hi)"
                ),
                params,
            ).scalar_one()
            if stray:
                conn.execute(
                    text(
                        f"CREATE TEMP TABLE _rtcc_moved ON COMMIT DROP AS "
                        f"WITH d AS (DELETE FROM {default_partition} "
                        f"WHERE {key_col} >= :lo AND {key_col} < :hi "
                        f"RETURNING {columns}) SELECT * FROM d"
                    ),
                    params,
                )
                moved = True
        # Bounds are literals (DDL takes no parameters); both are UTC midnights.
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} "
                f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
            )
        )
        if moved:
            conn.execute(text(f"INSERT INTO {parent} ({columns}) SELECT {columns} FROM _rtcc_moved"))
            conn.execute(text("DROP TABLE _rtcc_moved"))
        created.append(name)
    return created
