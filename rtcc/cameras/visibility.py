"""Which cameras can see a point at a time.

A camera sees a point when the point is within its ``range_m`` and inside
its horizontal field of view (the bearing from the camera to the point is
within ``fov_deg / 2`` of the camera's view bearing, wrapping at 0/360).
Fixed cameras (city, community) use their registered position; an in-car
camera uses its device's heartbeat nearest in time to ``at`` (within
``max_gap_s``), and its view bearing is relative to the vehicle's heading
from that heartbeat. Only ``active`` cameras count.

Results: integrated cameras first (live feed), then by distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.cameras.registry import is_live
from rtcc.errors import ValidationFailed
from rtcc.geo import bbox, bearing_deg, distance_m, in_field_of_view
from rtcc.store.tables import EventRecord
from rtcc.store.tables_cameras import CameraRow

SEARCH_RADIUS_M = 5000.0
"""Fixed cameras farther than this are never candidates (the largest range accepted is lower)."""

FIRST_YEAR, LAST_YEAR = 1970, 9998
"""The UTC years a visibility time may fall in (no camera existed before; later overflows)."""


def check_at(at: datetime) -> datetime:
    """``at`` in UTC, refused when it has no timezone or falls outside :data:`FIRST_YEAR`–:data:`LAST_YEAR`.

    Raises
    ------
    rtcc.errors.ValidationFailed
        No timezone, or a year out of range (e.g. ``0001-01-01T00:00:00+14:00``, which has no UTC
        equivalent at all).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValidationFailed("at needs a timezone (e.g. 2026-01-01T00:00:00Z)", details={"field": "at"})
    try:
        utc = at.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not FIRST_YEAR <= utc.year <= LAST_YEAR:
        raise ValidationFailed(
            f"at {at.isoformat()} is out of range: give a time between {FIRST_YEAR}-01-01 and "
            f"{LAST_YEAR}-12-31 UTC",
            details={"field": "at"},
        )
    return utc


@dataclass(frozen=True)
class VisibleCamera:
    """A camera that can see the point.

    Attributes
    ----------
    camera_id : UUID
    name : str
    kind : str
        ``city``, ``in_car`` or ``community``.
    level : str
        ``integrated`` or ``registered``.
    distance_m : float
        Camera to point, metres.
    bearing_deg : float
        Bearing from the camera to the point, degrees clockwise from north.
    live : bool
        A live view is available.
    lat, lon : float
        Where the camera was at that time, degrees.
    """

    camera_id: UUID
    name: str
    kind: str
    level: str
    distance_m: float
    bearing_deg: float
    live: bool
    lat: float = 0.0
    lon: float = 0.0


def _heartbeat_near(
    s: Session, device_id: str, at: datetime, gap: timedelta
) -> tuple[float, float, float | None] | None:
    """(lat, lon, heading) of the device's heartbeat nearest ``at`` within ``gap``, or None."""
    rows = s.execute(
        select(EventRecord.occurred_at, EventRecord.lat, EventRecord.lon, EventRecord.payload)
        .where(
            EventRecord.type == "device_heartbeat",
            EventRecord.device_id == device_id,
            EventRecord.occurred_at >= at - gap,
            EventRecord.occurred_at <= at + gap,
            EventRecord.lat.is_not(None),
        )
        .order_by(EventRecord.occurred_at)
    ).all()
    if not rows:
        return None
    best = min(rows, key=lambda r: abs((r[0] - at).total_seconds()))
    payload: dict[str, Any] = best[3] or {}
    heading = payload.get("heading_deg")
    return float(best[1]), float(best[2]), float(heading) if heading is not None else None


def cameras_seeing(
    session: Session,
    lat: float,
    lon: float,
    at: datetime,
    *,
    limit: int = 50,
    max_gap_s: float = 120.0,
) -> list[VisibleCamera]:
    """The active cameras that can see (lat, lon) at time ``at``.

    Parameters
    ----------
    session : Session
        An open session.
    lat, lon : float
        The point, degrees.
    at : datetime
        The time (timezone-aware); decides where in-car cameras were.
    limit : int
        Most cameras returned.
    max_gap_s : float
        An in-car camera's heartbeat must be this close to ``at``, seconds.

    Returns
    -------
    list of VisibleCamera
        Integrated first, then nearest first.
    """
    south, west, north, east = bbox(lat, lon, SEARCH_RADIUS_M)
    fixed = session.scalars(
        select(CameraRow).where(
            CameraRow.status == "active",
            CameraRow.created_at <= at,
            CameraRow.kind != "in_car",
            CameraRow.lat.between(south, north),
            CameraRow.lon.between(west, east),
        )
    ).all()
    moving = session.scalars(
        select(CameraRow).where(
            CameraRow.status == "active", CameraRow.kind == "in_car", CameraRow.created_at <= at
        )
    ).all()
    out: list[VisibleCamera] = []

    def consider(row: CameraRow, clat: float, clon: float, view: float | None) -> None:
        d = distance_m(clat, clon, lat, lon)
        if d > row.range_m:
            return
        b = bearing_deg(clat, clon, lat, lon)
        if d >= 0.5:  # at the camera itself every direction counts
            if view is None and row.fov_deg < 360.0:
                return
            if view is not None and not in_field_of_view(view, row.fov_deg, b):
                return
        out.append(
            VisibleCamera(
                row.id, row.name, row.kind, row.level, round(d, 1), round(b, 1), is_live(row), clat, clon
            )
        )

    for row in fixed:
        assert row.lat is not None and row.lon is not None
        consider(row, row.lat, row.lon, row.bearing_deg)
    gap = timedelta(seconds=max_gap_s)
    for row in moving:
        if not row.device_id:
            continue
        pos = _heartbeat_near(session, row.device_id, at, gap)
        if pos is None:
            continue
        clat, clon, heading = pos
        view = None if heading is None else (heading + row.bearing_deg) % 360.0
        consider(row, clat, clon, view)
    out.sort(key=lambda v: (v.level != "integrated", v.distance_m))
    return out[:limit]
