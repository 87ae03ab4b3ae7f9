"""Body cams as units: where they are and whether they record.

A body cam is a device of type ``bodycam`` (see ``rtcc devices add``); its
position, battery and recording state come from its latest heartbeat (kept on
its ``devices`` row by the health processor), its recording state also from
its latest acknowledged command.

Officer positions are personal data: callers that show them to a person
audit the read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.roles import DeviceType
from rtcc.store.tables import Device

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius, metres (IUGG)."""


@dataclass(frozen=True)
class UnitNear:
    """A body cam near a point.

    Attributes
    ----------
    device_id : str
        The body cam.
    name : str
        Its name (e.g. ``Body cam, unit 03``).
    distance_m : float
        Great-circle distance from the point to its latest position, metres.
    recording : bool
        Whether it last reported recording.
    last_seen_at : datetime or None
        When it was last heard from.
    """

    device_id: str
    name: str
    distance_m: float
    recording: bool
    last_seen_at: datetime | None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS84 points, metres (spherical Earth).

    Parameters
    ----------
    lat1, lon1, lat2, lon2 : float
        Degrees.

    Returns
    -------
    float
        Distance in metres; error below 0.5 % against the ellipsoid.
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _bodycams(session: Session) -> Any:
    return select(Device).where(Device.type == DeviceType.bodycam.value, Device.revoked_at.is_(None))


def units_near(session: Session, lat: float, lon: float, radius_m: float) -> list[UnitNear]:
    """Body cams whose latest position is within ``radius_m`` of (``lat``, ``lon``), nearest first.

    Parameters
    ----------
    session : Session
        An open session.
    lat, lon : float
        The point, degrees.
    radius_m : float
        Radius, metres (>= 0).
    """
    if radius_m < 0:
        raise ValueError("radius_m must be >= 0")
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    q = _bodycams(session).where(
        Device.lat.is_not(None),
        Device.lon.is_not(None),
        Device.lat.between(lat - dlat, lat + dlat),
        Device.lon.between(lon - dlon, lon + dlon),
    )
    out = []
    for dev in session.scalars(q):
        assert dev.lat is not None and dev.lon is not None
        d = haversine_m(lat, lon, dev.lat, dev.lon)
        if d <= radius_m:
            out.append(
                UnitNear(
                    device_id=dev.id,
                    name=dev.name,
                    distance_m=d,
                    recording=bool((dev.attributes or {}).get("recording", False)),
                    last_seen_at=dev.last_seen_at,
                )
            )
    out.sort(key=lambda u: (u.distance_m, u.device_id))
    return out


def list_units(session: Session) -> list[dict[str, Any]]:
    """Every body cam with its latest position, battery, recording state and health."""
    out = []
    for dev in session.scalars(_bodycams(session).order_by(Device.id)):
        attrs = dev.attributes or {}
        out.append(
            {
                "device_id": dev.id,
                "name": dev.name,
                "unit": attrs.get("unit"),
                "status": dev.status,
                "lat": dev.lat,
                "lon": dev.lon,
                "heading_deg": dev.heading_deg,
                "battery_pct": attrs.get("battery_pct"),
                "recording": bool(attrs.get("recording", False)),
                "last_seen_at": dev.last_seen_at,
            }
        )
    return out
