"""Geodesy shared by every room: great-circle distance and bearing, bounding boxes, the field-of-view test.

Distances use the haversine formula on a sphere of radius
:data:`EARTH_RADIUS_M` (error under 0.5 % against WGS84 — centimetres at
camera ranges); bearings are initial great-circle bearings in degrees
clockwise from true north, in ``[0, 360)``.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius, m (IUGG)."""


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two WGS84 points.

    Parameters
    ----------
    lat1, lon1, lat2, lon2 : float
        Latitudes and longitudes, degrees.

    Returns
    -------
    float
        Distance along the sphere, metres.
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2.

    Returns
    -------
    float
        Degrees clockwise from true north, in ``[0, 360)``.
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def angle_between(a_deg: float, b_deg: float) -> float:
    """Smallest angle between two bearings, degrees in ``[0, 180]`` (wraps at 0/360)."""
    d = abs((a_deg - b_deg) % 360.0)
    return 360.0 - d if d > 180.0 else d


def in_field_of_view(view_bearing_deg: float, fov_deg: float, target_bearing_deg: float) -> bool:
    """Whether a target bearing lies inside a camera's horizontal field of view.

    Parameters
    ----------
    view_bearing_deg : float
        Where the camera looks (centre of its view), degrees from north.
    fov_deg : float
        Horizontal field of view, degrees; 360 sees everywhere.
    target_bearing_deg : float
        Bearing from the camera to the target, degrees from north.
    """
    if fov_deg >= 360.0:
        return True
    return angle_between(view_bearing_deg, target_bearing_deg) <= fov_deg / 2.0 + 1e-9


def bbox(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """A (south, west, north, east) box in degrees holding every point within ``radius_m``."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    coslat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(180.0, dlat / coslat)
    return lat - dlat, lon - dlon, lat + dlat, lon + dlon
