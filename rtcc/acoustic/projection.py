"""WGS84 latitude/longitude to local metres and back, for multilateration.

The localizer works in a flat local frame (``x`` east, ``y`` north, ``z`` up,
metres). :class:`Projection` is PROJ's azimuthal equidistant projection
(``+proj=aeqd``) on the WGS84 ellipsoid centred on a chosen point (the
simulated city's centre or the first sensor of a group): distances and
bearings from the centre are exact, and over a few kilometres the scale error
elsewhere is far below a centimetre, so times of flight computed in the plane
are the ground's.
"""

from __future__ import annotations

from pyproj import CRS, Transformer


class Projection:
    """A local metric frame centred on ``(lat0, lon0)``.

    Parameters
    ----------
    lat0, lon0 : float
        Centre of the frame (its origin), degrees.
    alt0_m : float
        Height of the origin above the WGS84 ellipsoid, metres; ``z`` is
        height above it.
    """

    def __init__(self, lat0: float, lon0: float, alt0_m: float = 0.0) -> None:
        self.lat0 = lat0
        self.lon0 = lon0
        self.alt0_m = alt0_m
        local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0!r} +lon_0={lon0!r} +datum=WGS84 +units=m +no_defs")
        wgs84 = CRS.from_epsg(4326)
        self._fwd = Transformer.from_crs(wgs84, local, always_xy=True)
        self._inv = Transformer.from_crs(local, wgs84, always_xy=True)

    def to_xyz(self, lat: float, lon: float, alt_m: float | None = None) -> tuple[float, float, float]:
        """Local ``(x, y, z)`` in metres of a WGS84 position (``alt_m`` None: z = 0)."""
        x, y = self._fwd.transform(lon, lat)
        z = 0.0 if alt_m is None else alt_m - self.alt0_m
        return float(x), float(y), float(z)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """WGS84 ``(lat, lon)`` in degrees of a local point in metres."""
        lon, lat = self._inv.transform(x, y)
        return float(lat), float(lon)
