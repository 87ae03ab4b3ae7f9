"""Body cams as units: where they are and whether they record.

A body cam is a device of type ``bodycam`` (see ``rtcc devices add``); its
position, battery and recording state come from its latest heartbeat (kept on
its ``devices`` row by the health processor), its recording state also from
its latest acknowledged command. Until its first heartbeat its row holds the
coordinates it was registered with: :func:`units_near` counts only units online
with a heartbeat.

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

from rtcc.geo import EARTH_RADIUS_M, distance_m
from rtcc.roles import DeviceType
from rtcc.store.tables import Device

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


def _bodycams(session: Session) -> Any:
    return select(Device).where(Device.type == DeviceType.bodycam.value, Device.revoked_at.is_(None))


def units_near(session: Session, lat: float, lon: float, radius_m: float) -> list[UnitNear]:
    """Online body cams whose latest heartbeat position is within ``radius_m`` of (``lat``, ``lon``).

    Nearest first. Only units that are ``online`` (a heartbeat within the health processor's
    ``offline_after``; :mod:`rtcc.ingest.health` flips silent ones ``offline``) and that have sent a
    heartbeat at all count: a unit registered but never heard from still has its registration
    coordinates as its position, and one gone silent its last one; neither says where the officer
    is now, and commanding them only ends in a timeout.

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
        Device.status == "online",
        Device.last_seen_at.is_not(None),
        Device.lat.is_not(None),
        Device.lon.is_not(None),
        Device.lat.between(lat - dlat, lat + dlat),
        Device.lon.between(lon - dlon, lon + dlon),
    )
    out = []
    for dev in session.scalars(q):
        assert dev.lat is not None and dev.lon is not None
        d = distance_m(lat, lon, dev.lat, dev.lon)
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
