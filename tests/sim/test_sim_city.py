"""The simulated city's layout: density, area, projection, roads and patrol movement.

Tolerances are stated in physical units beside each assertion; every
random draw is seeded.
"""

from __future__ import annotations

import math
import random

import pytest
from pyproj import Geod

from rtcc.roles import DeviceType
from rtcc.settings import SimSettings
from rtcc.sim import build_city
from rtcc.sim.city import SQ_M_PER_SQ_MILE
from rtcc.sim.geometry import bearing_deg, distance, distance_to_polyline
from rtcc.sim.roads import GRID_ANGLE_DEG
from rtcc.sim.units import MAX_SPEED_MPS, MIN_SPEED_MPS

DEFAULT = SimSettings()
LINN_PARK = (33.5215, -86.8094)  # between 20th/21st St N and 7th/8th Ave N


def _axis(a: float, b: float) -> float:
    """Smallest angle between two undirected line directions, degrees."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def test_square_mile_constant() -> None:
    assert pytest.approx(2.58999e6, rel=1e-5) == SQ_M_PER_SQ_MILE


def test_default_sensor_density_is_15_to_20_per_square_mile() -> None:
    city = build_city(DEFAULT)
    density = len(city.sensors) / city.area_sq_miles
    assert 15.0 <= density <= 20.0, density
    # 3.2 km square = 3.95 sq mi at 17 per sq mi -> 67 sensors, ~390 m apart.
    assert len(city.sensors) == 67


@pytest.mark.parametrize("extent_m", [1600.0, 3200.0, 5000.0, 8000.0])
@pytest.mark.parametrize("per_sq_mile", [15.0, 17.0, 20.0])
def test_sensor_density_follows_settings(extent_m: float, per_sq_mile: float) -> None:
    city = build_city(SimSettings(extent_m=extent_m, sensors_per_sq_mile=per_sq_mile))
    density = len(city.sensors) / city.area_sq_miles
    # Rounding to a whole sensor: within half a sensor of the target count.
    assert abs(density - per_sq_mile) * city.area_sq_miles <= 0.5


def test_sensor_spacing_is_about_400_m() -> None:
    city = build_city(DEFAULT)
    pts = [city.to_xy(d.lat, d.lon) for d in city.sensors]
    nearest = [min(distance(p, q) for q in pts if q is not p) for p in pts]
    mean = sum(nearest) / len(nearest)
    assert 250.0 <= mean <= 450.0, mean  # jittered ~390 m grid
    assert min(nearest) >= 100.0  # jitter never stacks two sensors together


def test_sensor_heights_are_rooftops_and_poles() -> None:
    city = build_city(DEFAULT)
    for d in city.sensors:
        assert 6.0 <= d.attributes["height_m"] <= 12.0
        assert d.attributes["alt_m"] == pytest.approx(city.ground_alt_m + d.attributes["height_m"])


def test_every_device_inside_the_area_with_valid_coordinates() -> None:
    city = build_city(DEFAULT)
    devices = city.devices()
    ids = [d.id for d in devices]
    assert len(ids) == len(set(ids))
    for d in devices:
        assert -90.0 <= d.lat <= 90.0 and -180.0 <= d.lon <= 180.0
        x, y = city.to_xy(d.lat, d.lon)
        assert city.contains_xy(x, y, margin_m=0.01), (d.id, x, y)
        # Downtown Birmingham, not (0, 0) or another continent.
        assert abs(d.lat - 33.5186) < 0.03 and abs(d.lon + 86.8104) < 0.03


def test_device_kinds_and_ids() -> None:
    city = build_city(DEFAULT)
    by_type: dict[DeviceType, list[str]] = {}
    for d in city.devices():
        by_type.setdefault(d.type, []).append(d.id)
    assert by_type[DeviceType.acoustic_sensor][0] == "ac-0001"
    assert [i for i in by_type[DeviceType.bodycam]] == [f"bwc-{i:02d}" for i in range(1, 13)]
    fixed = [i for i in by_type[DeviceType.plate_camera] if not i.startswith("lpr-m")]
    mobile = [i for i in by_type[DeviceType.plate_camera] if i.startswith("lpr-m")]
    assert fixed[0] == "lpr-001" and len(fixed) >= 8
    assert mobile == ["lpr-m01", "lpr-m02", "lpr-m03", "lpr-m04"]
    assert [u.id for u in city.units] == [f"unit-{i:02d}" for i in range(1, 13)]


def test_same_seed_same_city_other_seed_other_city() -> None:
    a = [d.to_dict() for d in build_city(DEFAULT).devices()]
    b = [d.to_dict() for d in build_city(DEFAULT).devices()]
    c = [d.to_dict() for d in build_city(SimSettings(seed=8)).devices()]
    assert a == b
    assert a != c


def test_projection_round_trip_error_below_1_cm() -> None:
    city = build_city(DEFAULT)
    rng = random.Random(1)
    h = city.half_m
    for _ in range(500):
        x, y = rng.uniform(-3 * h, 3 * h), rng.uniform(-3 * h, 3 * h)
        lat, lon = city.to_latlon(x, y)
        x2, y2 = city.to_xy(lat, lon)
        assert math.hypot(x2 - x, y2 - y) < 0.01  # metres


def test_projection_distances_are_ground_distances() -> None:
    city = build_city(DEFAULT)
    geod = Geod(ellps="WGS84")
    rng = random.Random(2)
    for _ in range(100):
        p = (rng.uniform(-1600, 1600), rng.uniform(-1600, 1600))
        q = (rng.uniform(-1600, 1600), rng.uniform(-1600, 1600))
        (lat1, lon1), (lat2, lon2) = city.to_latlon(*p), city.to_latlon(*q)
        _, _, true_m = geod.inv(lon1, lat1, lon2, lat2)
        # Azimuthal equidistant over a 3.2 km square: scale error < 1e-6 -> < 5 mm.
        assert abs(distance(p, q) - true_m) < 0.005


def test_projection_axes_point_east_and_north() -> None:
    city = build_city(DEFAULT)
    lat0, lon0 = city.to_latlon(0.0, 0.0)
    assert (lat0, lon0) == pytest.approx((DEFAULT.center_lat, DEFAULT.center_lon), abs=1e-9)
    lat_n, lon_n = city.to_latlon(0.0, 1000.0)
    lat_e, lon_e = city.to_latlon(1000.0, 0.0)
    assert lat_n > lat0 and lon_n == pytest.approx(lon0, abs=1e-9)
    assert lon_e > lon0 and lat_e == pytest.approx(lat0, abs=1e-4)


def test_avenues_run_ene_and_streets_nnw() -> None:
    city = build_city(DEFAULT)
    avenue_axis = 90.0 - GRID_ANGLE_DEG  # 61 deg: ENE-WSW
    street_axis = 360.0 - GRID_ANGLE_DEG  # 331 deg: NNW-SSE
    names = {r.name for r in city.roads}
    for expected in (
        "1st Ave N",
        "3rd Ave N",
        "5th Ave N",
        "7th Ave N",
        "Morris Ave",
        "20th St N",
        "18th St N",
        "24th St N",
        "I-20/59",
    ):
        assert expected in names
    for r in city.roads:
        b = bearing_deg(r.points[0], r.points[-1])
        if " Ave" in r.name:
            assert _axis(b, avenue_axis) < 0.01, r.name
        elif " St " in r.name:
            assert _axis(b, street_axis) < 0.01, r.name
        elif r.name == "I-20/59":
            assert _axis(b, avenue_axis) < 20.0  # roughly along the avenues
        for x, y in r.points:
            assert city.contains_xy(x, y, margin_m=1e-6)
    assert 25.0 <= GRID_ANGLE_DEG <= 30.0


def test_grid_is_anchored_downtown() -> None:
    city = build_city(DEFAULT)
    park = city.to_xy(*LINN_PARK)
    street = next(r for r in city.roads if r.name == "20th St N")
    # Linn Park's centre is half a block (~70 m) east of 20th Street North.
    assert distance_to_polyline(park, street.points) < 150.0


def test_plate_cameras_at_intersections_looking_along_roads() -> None:
    city = build_city(DEFAULT)
    arterials = [r for r in city.roads if r.kind == "arterial"]
    for cam in city.plate_cameras:
        p = city.to_xy(cam.lat, cam.lon)
        on = {r.name for r in arterials if distance_to_polyline(p, r.points) < 0.01}
        bases = {n.removesuffix(" N").removesuffix(" S") if " St " in n else n for n in on}
        assert len(bases) >= 2, (cam.id, on)
        assert cam.attributes["road"] in on
        h = cam.attributes["heading_deg"]
        assert 0.0 <= h < 360.0
        assert min(_axis(h, 90.0 - GRID_ANGLE_DEG), _axis(h, 360.0 - GRID_ANGLE_DEG)) < 0.1
        assert cam.attributes["fov_deg"] > 0


def test_units_stay_on_roads_at_patrol_speeds() -> None:
    city = build_city(DEFAULT)
    arterials = [r.points for r in city.roads if r.kind == "arterial"]
    rng = random.Random(3)
    roads_seen: dict[str, set[str]] = {u.id: set() for u in city.units}
    for _ in range(1500):
        dt = rng.choice([0.5, 1.0, 5.0, 10.0, 30.0])
        before = {u.id: (u.xy, u.odometer_m) for u in city.units}
        city.advance(dt)
        for u in city.units:
            (p0, odo0) = before[u.id]
            p = u.xy
            driven = u.odometer_m - odo0
            assert MIN_SPEED_MPS * dt - 1e-6 <= driven <= MAX_SPEED_MPS * dt + 1e-6
            assert distance(p0, p) <= driven + 1e-6  # never faster than along the road
            assert min(distance_to_polyline(p, pts) for pts in arterials) < 1e-3  # metres
            assert city.contains_xy(*p, margin_m=1e-3)
            assert MIN_SPEED_MPS <= u.speed_mps <= MAX_SPEED_MPS
            assert 0.0 <= u.heading_deg < 360.0
            roads_seen[u.id].add(u.road)
    for uid, seen in roads_seen.items():
        assert len(seen) >= 3, (uid, seen)  # units turn at intersections


def test_unit_movement_is_seeded() -> None:
    a, b = build_city(DEFAULT), build_city(DEFAULT)
    for _ in range(200):
        a.advance(7.0)
        b.advance(7.0)
    assert [u.xy for u in a.units] == [u.xy for u in b.units]


def test_body_cam_battery_drains_and_is_swapped() -> None:
    city = build_city(SimSettings(patrol_units=1))
    unit = city.units[0]
    start = unit.battery_pct
    city.advance(3600.0)
    assert unit.battery_pct == pytest.approx(start - 7.0)  # 7 % per hour
    for _ in range(24):
        city.advance(3600.0)
    assert unit.battery_swaps >= 1
    assert 15.0 <= unit.battery_pct <= 100.0


def test_geojson_layers_are_lon_lat() -> None:
    city = build_city(DEFAULT)
    roads = city.roads_geojson()
    assert roads["type"] == "FeatureCollection"
    assert len(roads["features"]) == len(city.roads)
    for f in roads["features"]:
        assert f["geometry"]["type"] == "LineString"
        for lon, lat in f["geometry"]["coordinates"]:
            assert -87.0 < lon < -86.6 and 33.4 < lat < 33.7
        assert f["properties"]["kind"] in ("arterial", "highway")
    area = city.area_geojson()
    (poly,) = area["features"]
    ring = poly["geometry"]["coordinates"][0]
    assert poly["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 5
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    # 3.2 km east-west at 33.5 deg N is ~0.0345 deg of longitude; north-south ~0.0289 deg.
    assert max(lons) - min(lons) == pytest.approx(3200 / (111_320 * math.cos(math.radians(33.52))), rel=0.01)
    assert max(lats) - min(lats) == pytest.approx(3200 / 110_900, rel=0.01)


def test_smallest_area_still_has_roads_and_units_inside() -> None:
    city = build_city(SimSettings(extent_m=200.0))
    assert city.network.edges
    assert len(city.sensors) == 1  # 0.015 sq mi: rounds to no sensor, keeps one
    for _ in range(200):
        city.advance(10.0)
        for u in city.units:
            assert city.contains_xy(*u.xy, margin_m=1e-3)
