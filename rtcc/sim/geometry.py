"""Plane geometry for the simulated city: a local metric projection and polylines.

Coordinates
-----------
Local coordinates are metres on an azimuthal equidistant projection centred
on the city (``x`` east, ``y`` north). Over a few kilometres its scale and
direction errors are far below a centimetre, so distances and bearings taken
in the plane are the ground's. Bearings are degrees clockwise from true north
in ``[0, 360)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyproj import CRS, Transformer

Point = tuple[float, float]
"""A local point ``(x, y)`` in metres (east, north)."""

_EPS = 1e-9


class LocalProjection:
    """WGS84 latitude/longitude to local metres and back.

    Parameters
    ----------
    lat0, lon0 : float
        The projection's centre (the local origin), degrees.

    Notes
    -----
    Uses PROJ's azimuthal equidistant projection (``+proj=aeqd``) on the
    WGS84 ellipsoid: distances and bearings from the centre are exact, and a
    round trip ``to_latlon(*to_xy(lat, lon))`` is exact to well under 1 mm.
    """

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0 = lat0
        self.lon0 = lon0
        local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0!r} +lon_0={lon0!r} +datum=WGS84 +units=m +no_defs")
        wgs84 = CRS.from_epsg(4326)
        self._fwd = Transformer.from_crs(wgs84, local, always_xy=True)
        self._inv = Transformer.from_crs(local, wgs84, always_xy=True)

    def to_xy(self, lat: float, lon: float) -> Point:
        """Local ``(x, y)`` in metres (east, north) of a WGS84 position in degrees."""
        x, y = self._fwd.transform(lon, lat)
        return float(x), float(y)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """WGS84 ``(lat, lon)`` in degrees of a local point in metres."""
        lon, lat = self._inv.transform(x, y)
        return float(lat), float(lon)


def rotate(u: float, v: float, angle_deg: float) -> Point:
    """Rotate ``(u, v)`` counter-clockwise by ``angle_deg`` degrees about the origin."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return u * c - v * s, u * s + v * c


def bearing_deg(a: Point, b: Point) -> float:
    """Bearing from ``a`` to ``b``, degrees clockwise from north in ``[0, 360)``."""
    return normalize_bearing(math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])))


def normalize_bearing(deg: float) -> float:
    """``deg`` wrapped into ``[0, 360)`` (never exactly 360 after rounding)."""
    out = deg % 360.0
    return 0.0 if out >= 360.0 else out


def distance(a: Point, b: Point) -> float:
    """Euclidean distance between two local points, metres."""
    return math.hypot(b[0] - a[0], b[1] - a[1])


def polyline_length(points: Sequence[Point]) -> float:
    """Length of a polyline, metres."""
    return sum(distance(points[i], points[i + 1]) for i in range(len(points) - 1))


def point_along(points: Sequence[Point], s: float) -> tuple[Point, float]:
    """The point ``s`` metres along a polyline and the bearing of its segment there.

    Parameters
    ----------
    points : sequence of Point
        At least two vertices, metres.
    s : float
        Distance from the first vertex, metres; clamped to the polyline.

    Returns
    -------
    (Point, float)
        The point (metres) and the bearing (degrees) of travel from the first
        vertex towards the last.
    """
    s = max(0.0, s)
    for i in range(len(points) - 1):
        a, b = points[i], points[i + 1]
        seg = distance(a, b)
        if s <= seg or i == len(points) - 2:
            t = 0.0 if seg <= _EPS else min(1.0, s / seg)
            return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])), bearing_deg(a, b)
        s -= seg
    raise ValueError("a polyline needs at least two points")


def distance_to_segment(p: Point, a: Point, b: Point) -> float:
    """Shortest distance from ``p`` to the segment ``a``–``b``, metres."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    den = dx * dx + dy * dy
    t = 0.0 if den <= _EPS else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / den))
    return distance(p, (a[0] + t * dx, a[1] + t * dy))


def distance_to_polyline(p: Point, points: Sequence[Point]) -> float:
    """Shortest distance from ``p`` to a polyline, metres."""
    return min(distance_to_segment(p, points[i], points[i + 1]) for i in range(len(points) - 1))


def clip_segment(a: Point, b: Point, half: float) -> tuple[Point, Point] | None:
    """Clip a segment to the square ``[-half, half]²`` (Liang–Barsky).

    Returns
    -------
    tuple of Point or None
        The part inside the square, or None when none of it is.
    """
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, a[0] + half), (dx, half - a[0]), (-dy, a[1] + half), (dy, half - a[1])):
        if abs(p) <= _EPS:
            if q < 0:
                return None
            continue
        r = q / p
        if p < 0:
            t0 = max(t0, r)
        else:
            t1 = min(t1, r)
        if t0 > t1:
            return None
    return (a[0] + t0 * dx, a[1] + t0 * dy), (a[0] + t1 * dx, a[1] + t1 * dy)


def clip_polyline(points: Sequence[Point], half: float) -> list[list[Point]]:
    """The pieces of a polyline inside the square ``[-half, half]²``.

    Returns
    -------
    list of list of Point
        Each piece has at least two distinct vertices; a polyline that leaves
        and re-enters the square gives several pieces.
    """
    pieces: list[list[Point]] = []
    current: list[Point] = []
    for i in range(len(points) - 1):
        clipped = clip_segment(points[i], points[i + 1], half)
        if clipped is None or distance(*clipped) <= 1e-6:
            if len(current) >= 2:
                pieces.append(current)
            current = []
            continue
        a, b = clipped
        if current and distance(current[-1], a) <= 1e-6:
            current.append(b)
        else:
            if len(current) >= 2:
                pieces.append(current)
            current = [a, b]
    if len(current) >= 2:
        pieces.append(current)
    return pieces


def segment_intersection(a: Point, b: Point, c: Point, d: Point) -> tuple[float, float] | None:
    """Where segments ``a``–``b`` and ``c``–``d`` cross, as fractions along each.

    Returns
    -------
    tuple of float or None
        ``(t, u)`` with the crossing at ``a + t (b - a) = c + u (d - c)``, both
        in ``[0, 1]`` (ends included, to a nanometre); None when the segments
        are parallel or do not meet.
    """
    rx, ry = b[0] - a[0], b[1] - a[1]
    sx, sy = d[0] - c[0], d[1] - c[1]
    den = rx * sy - ry * sx
    if abs(den) <= _EPS:
        return None
    qx, qy = c[0] - a[0], c[1] - a[1]
    t = (qx * sy - qy * sx) / den
    u = (qx * ry - qy * rx) / den
    tol_t = 1e-9 / max(math.hypot(rx, ry), _EPS)
    tol_u = 1e-9 / max(math.hypot(sx, sy), _EPS)
    if -tol_t <= t <= 1 + tol_t and -tol_u <= u <= 1 + tol_u:
        return min(1.0, max(0.0, t)), min(1.0, max(0.0, u))
    return None
