"""The simulated city: area, projection, roads, devices and patrol units.

:func:`build_city` lays out, from :class:`rtcc.settings.SimSettings` and its
seed, a square of side ``extent_m`` around the city centre (downtown
Birmingham, Alabama, by default) with

* acoustic sensors on a jittered grid at ``sensors_per_sq_mile`` (rooftops
  and poles, 6–12 m up), ids ``ac-0001``…;
* fixed plate cameras at intersections of the arterials, each looking along
  one of the roads, ids ``lpr-001``…;
* patrol units ``unit-01``… on the road network, each officer with a body
  cam ``bwc-01``…, and every third car with a mobile plate camera
  ``lpr-m01``….

The same settings give the same city.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rtcc.roles import DeviceType
from rtcc.settings import SimSettings
from rtcc.sim.geometry import LocalProjection, Point, bearing_deg
from rtcc.sim.roads import Road, RoadNetwork, birmingham_roads, build_network
from rtcc.sim.units import PatrolUnit

SQ_M_PER_SQ_MILE = 2_589_988.11
"""Square metres in one square mile."""

SENSOR_HEIGHT_M = (6.0, 12.0)
"""Range of acoustic sensor heights above ground (rooftops and poles), m."""

SENSOR_NOISE_FLOOR_DB = (45.0, 58.0)
"""Range of the sensors' baseline noise floors, dB SPL (downtown)."""

GROUND_ALT_M = 150.0
"""Ground height above the WGS84 ellipsoid downtown, m.

About 180 m above sea level, less the ~30 m geoid separation in Alabama.
"""

PLATE_CAMERA_FOV_DEG = 40.0
"""Horizontal field of view of a fixed plate camera, degrees."""

PLATE_CAMERA_RANGE_M = 35.0
"""Distance up to which a plate camera reads plates, m."""

MOBILE_PLATE_CAMERA_EVERY = 3
"""Every n-th patrol car (unit-01, unit-04, …) carries a mobile plate camera."""

_COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def compass(bearing: float) -> str:
    """The 8-point compass direction of a bearing in degrees (e.g. ``"NE"``)."""
    return _COMPASS[round(bearing / 45.0) % 8]


@dataclass(frozen=True)
class SimDevice:
    """One simulated device as the center provisions it.

    Attributes
    ----------
    id : str
        Device id, e.g. ``ac-0001``.
    type : DeviceType
        Kind of device (sets its key's scope).
    name : str
        Human-readable name.
    lat, lon : float
        WGS84 position, degrees (for a device on a patrol car: where it was
        when listed).
    attributes : dict
        Extra facts: ``height_m``/``alt_m`` (m), ``noise_floor_db`` (dB) for
        acoustic sensors; ``heading_deg``/``fov_deg`` (degrees),
        ``range_m`` (m), ``road`` for plate cameras; ``unit`` and
        ``mobile`` for devices carried by a patrol unit.
    """

    id: str
    type: DeviceType
    name: str
    lat: float
    lon: float
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def unit(self) -> str | None:
        """The patrol unit carrying the device, if any."""
        u = self.attributes.get("unit")
        return u if isinstance(u, str) else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: id, type, name, lat, lon, attributes."""
        return {
            "id": self.id,
            "type": self.type.value,
            "name": self.name,
            "lat": self.lat,
            "lon": self.lon,
            "attributes": dict(self.attributes),
        }


@dataclass
class City:
    """A simulated city: where everything is, and the patrol units' state.

    Attributes
    ----------
    name : str
        City name.
    center_lat, center_lon : float
        City centre (the local origin), degrees.
    extent_m : float
        Side of the simulated square, metres.
    seed : int
        Seed the layout and the units' movement were drawn from.
    projection : LocalProjection
        WGS84 to local metres and back.
    roads : list of Road
        Main roads inside the area.
    network : RoadNetwork
        The arterials as a drivable graph.
    sensors : list of SimDevice
        Acoustic sensors.
    plate_cameras : list of SimDevice
        Fixed plate cameras.
    units : list of PatrolUnit
        Patrol units (their devices are listed by :meth:`devices`).
    """

    name: str
    center_lat: float
    center_lon: float
    extent_m: float
    seed: int
    projection: LocalProjection
    roads: list[Road]
    network: RoadNetwork
    sensors: list[SimDevice]
    plate_cameras: list[SimDevice]
    units: list[PatrolUnit]
    ground_alt_m: float = GROUND_ALT_M
    _by_id: dict[str, PatrolUnit] = field(default_factory=dict, init=False, repr=False)

    # -- geometry ---------------------------------------------------------------

    @property
    def half_m(self) -> float:
        """Half the side of the square, metres."""
        return self.extent_m / 2.0

    @property
    def area_sq_miles(self) -> float:
        """Area of the square, square miles."""
        return self.extent_m**2 / SQ_M_PER_SQ_MILE

    def to_xy(self, lat: float, lon: float) -> Point:
        """Local ``(x, y)`` in metres (east, north) of a WGS84 position in degrees."""
        return self.projection.to_xy(lat, lon)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """WGS84 ``(lat, lon)`` in degrees of a local point in metres."""
        return self.projection.to_latlon(x, y)

    def contains_xy(self, x: float, y: float, margin_m: float = 1e-6) -> bool:
        """Whether a local point (metres) is inside the square (``margin_m`` tolerance)."""
        h = self.half_m + margin_m
        return -h <= x <= h and -h <= y <= h

    # -- devices and units --------------------------------------------------------

    def unit(self, unit_id: str) -> PatrolUnit:
        """The patrol unit ``unit_id``.

        Raises
        ------
        KeyError
            When there is no such unit.
        """
        if len(self._by_id) != len(self.units):
            self._by_id = {u.id: u for u in self.units}
        return self._by_id[unit_id]

    def unit_devices(self, unit: PatrolUnit) -> Iterator[SimDevice]:
        """The devices a unit carries (body cam, then its plate camera if any), where it is now."""
        lat, lon = self.to_latlon(*unit.xy)
        heading = round(unit.heading_deg, 1) % 360.0
        n = unit.id.removeprefix("unit-")
        yield SimDevice(
            unit.bodycam_id,
            DeviceType.bodycam,
            f"Body cam, unit {n}",
            lat,
            lon,
            {"unit": unit.id, "mobile": True},
        )
        if unit.plate_camera_id is not None:
            yield SimDevice(
                unit.plate_camera_id,
                DeviceType.plate_camera,
                f"In-car plate camera, unit {n}",
                lat,
                lon,
                {
                    "unit": unit.id,
                    "mobile": True,
                    "heading_deg": heading,
                    "fov_deg": 360.0,
                    "range_m": 20.0,
                },
            )

    def devices(self) -> list[SimDevice]:
        """Every device: sensors, fixed plate cameras, then each unit's devices."""
        out = [*self.sensors, *self.plate_cameras]
        for u in self.units:
            out.extend(self.unit_devices(u))
        return out

    def advance(self, dt_s: float) -> None:
        """Move every patrol unit by ``dt_s`` simulated seconds."""
        for u in self.units:
            u.advance(dt_s)

    # -- map layers -----------------------------------------------------------------

    def _lonlat(self, p: Point) -> list[float]:
        lat, lon = self.to_latlon(*p)
        return [round(lon, 7), round(lat, 7)]

    def roads_geojson(self) -> dict[str, Any]:
        """The main roads as a GeoJSON FeatureCollection (LineStrings, lon/lat order)."""
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": r.name, "kind": r.kind},
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [self._lonlat(p) for p in r.points],
                    },
                }
                for r in self.roads
            ],
        }

    def area_geojson(self) -> dict[str, Any]:
        """The simulated square as a GeoJSON FeatureCollection (one Polygon, lon/lat order)."""
        h = self.half_m
        ring = [self._lonlat(p) for p in ((-h, -h), (h, -h), (h, h), (-h, h), (-h, -h))]
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {
                        "name": self.name,
                        "extent_m": self.extent_m,
                        "area_sq_mi": round(self.area_sq_miles, 3),
                        "center": [self.center_lon, self.center_lat],
                    },
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            ],
        }


def _sensors(settings: SimSettings, proj: LocalProjection, rng: random.Random) -> list[SimDevice]:
    """Acoustic sensors on a jittered grid at the configured density."""
    extent = settings.extent_m
    half = extent / 2.0
    n = max(1, round(settings.sensors_per_sq_mile * extent**2 / SQ_M_PER_SQ_MILE))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw, ch = extent / cols, extent / rows
    cells = sorted(rng.sample([(r, c) for r in range(rows) for c in range(cols)], n))
    out = []
    for i, (r, c) in enumerate(cells, start=1):
        x = -half + (c + 0.5 + rng.uniform(-0.3, 0.3)) * cw
        y = -half + (r + 0.5 + rng.uniform(-0.3, 0.3)) * ch
        lat, lon = proj.to_latlon(x, y)
        height = round(rng.uniform(*SENSOR_HEIGHT_M), 1)
        mount = "pole" if height < 8.0 else "rooftop"
        out.append(
            SimDevice(
                f"ac-{i:04d}",
                DeviceType.acoustic_sensor,
                f"Acoustic sensor {i} ({mount})",
                lat,
                lon,
                {
                    "height_m": height,
                    "alt_m": round(GROUND_ALT_M + height, 1),
                    "mount": mount,
                    "noise_floor_db": round(rng.uniform(*SENSOR_NOISE_FLOOR_DB), 1),
                },
            )
        )
    return out


def _plate_cameras(network: RoadNetwork, proj: LocalProjection, rng: random.Random) -> list[SimDevice]:
    """Fixed plate cameras at half of the arterial intersections, each looking along a road."""
    nodes = sorted(network.intersections(), key=lambda k: (network.nodes[k][1], network.nodes[k][0]))
    chosen = sorted(rng.sample(nodes, math.ceil(len(nodes) / 2)), key=nodes.index)
    out = []
    for i, node in enumerate(chosen, start=1):
        edge = network.edges[rng.choice(network.incident[node])]
        pts = edge.points
        ahead = pts[1] if edge.a == node else pts[-2]
        heading = round(bearing_deg(network.nodes[node], ahead), 1) % 360.0
        cross = sorted(network.node_roads[node] - {edge.road})
        where = f"{edge.road} & {cross[0]}" if cross else edge.road
        lat, lon = proj.to_latlon(*network.nodes[node])
        out.append(
            SimDevice(
                f"lpr-{i:03d}",
                DeviceType.plate_camera,
                f"LPR {where}, facing {compass(heading)}",
                lat,
                lon,
                {
                    "heading_deg": heading,
                    "fov_deg": PLATE_CAMERA_FOV_DEG,
                    "range_m": PLATE_CAMERA_RANGE_M,
                    "road": edge.road,
                    "cross_street": cross[0] if cross else None,
                    "mobile": False,
                },
            )
        )
    return out


def build_city(settings: SimSettings, *, name: str = "Birmingham, Alabama") -> City:
    """Lay out the simulated city described by ``settings``.

    Parameters
    ----------
    settings : SimSettings
        Centre (degrees), extent (m), sensor density (per square mile),
        number of patrol units and seed.
    name : str
        City name shown on the map.

    Returns
    -------
    City
        The same settings always give the same city.

    Raises
    ------
    ValueError
        When patrol units are asked for but no arterial crosses the area
        (``sim.extent_m`` too small).
    """
    rng = random.Random(settings.seed)
    proj = LocalProjection(settings.center_lat, settings.center_lon)
    roads = birmingham_roads(settings.extent_m)
    network = build_network(roads)
    sensors = _sensors(settings, proj, rng)
    cameras = _plate_cameras(network, proj, rng)
    if settings.patrol_units and not network.edges:
        raise ValueError(
            f"no arterial crosses a {settings.extent_m:g} m square: raise sim.extent_m "
            "or set sim.patrol_units = 0"
        )
    units = []
    n_lpr = 0
    for i in range(1, settings.patrol_units + 1):
        lpr = None
        if (i - 1) % MOBILE_PLATE_CAMERA_EVERY == 0:
            n_lpr += 1
            lpr = f"lpr-m{n_lpr:02d}"
        units.append(
            PatrolUnit(
                f"unit-{i:02d}",
                f"bwc-{i:02d}",
                lpr,
                network=network,
                rng=random.Random(f"{settings.seed}:unit-{i}"),
            )
        )
    return City(
        name=name,
        center_lat=settings.center_lat,
        center_lon=settings.center_lon,
        extent_m=settings.extent_m,
        seed=settings.seed,
        projection=proj,
        roads=roads,
        network=network,
        sensors=sensors,
        plate_cameras=cameras,
        units=units,
    )
