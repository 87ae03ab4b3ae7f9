"""Field-of-view geometry and ``cameras_seeing`` against known positions (metres, degrees)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from rtcc.cameras.visibility import cameras_seeing
from rtcc.geo import angle_between, bearing_deg, distance_m, in_field_of_view
from rtcc.store.tables import EventRecord
from rtcc.store.tables_cameras import CameraRow
from tests.conftest import Running

LAT0, LON0 = 33.5186, -86.8104


def offset(lat: float, lon: float, bearing: float, dist_m: float) -> tuple[float, float]:
    """The point ``dist_m`` from (lat, lon) along ``bearing`` (spherical destination formula)."""
    r = 6_371_008.8
    p1, l1, b, d = math.radians(lat), math.radians(lon), math.radians(bearing), dist_m / r
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


def test_distance_and_bearing_ground_truth() -> None:
    for b in (0.0, 45.0, 90.0, 180.0, 271.5, 359.0):
        lat, lon = offset(LAT0, LON0, b, 150.0)
        assert distance_m(LAT0, LON0, lat, lon) == pytest.approx(150.0, abs=0.01)
        assert angle_between(bearing_deg(LAT0, LON0, lat, lon), b) < 0.01
    # one degree of latitude is about 111.2 km
    assert distance_m(0.0, 10.0, 1.0, 10.0) == pytest.approx(111_195, rel=1e-3)


def test_field_of_view_wraps_at_north() -> None:
    assert angle_between(350.0, 10.0) == pytest.approx(20.0)
    assert in_field_of_view(350.0, 40.0, 5.0)  # 15° right of the view, across 0/360
    assert in_field_of_view(350.0, 40.0, 331.0)
    assert not in_field_of_view(350.0, 40.0, 20.0)  # 30° off: outside ±20°
    assert not in_field_of_view(10.0, 40.0, 340.0)
    assert in_field_of_view(123.0, 360.0, 303.0)


def _cam(**kw: Any) -> CameraRow:
    base: dict[str, Any] = {
        "id": uuid4(),
        "kind": "city",
        "name": "cam",
        "lat": LAT0,
        "lon": LON0,
        "bearing_deg": 0.0,
        "fov_deg": 90.0,
        "range_m": 100.0,
        "level": "registered",
        "status": "active",
        "verify_attempts": 0,
        # cameras are listed only for times at which they existed: these predate the searches
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    base.update(kw)
    return CameraRow(**base)


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_cameras_seeing_range_fov_order_and_in_car(center: Running) -> None:
    store = center.center.store
    assert store is not None
    target = offset(LAT0, LON0, 0.0, 60.0)  # 60 m north of the origin
    north_facing = _cam(name="north 350/40", bearing_deg=350.0, fov_deg=40.0)  # sees it (wrap)
    east_facing = _cam(name="east", bearing_deg=90.0)  # wrong way
    too_short = _cam(name="short", range_m=50.0)  # 60 m > 50 m
    far_lat, far_lon = offset(LAT0, LON0, 0.0, 160.0)  # 100 m north of the target, looking south
    integrated = _cam(
        name="integrated",
        kind="community",
        level="integrated",
        lat=far_lat,
        lon=far_lon,
        bearing_deg=180.0,
        range_m=120.0,
        stream_url="synthetic://x",
    )
    pending = _cam(name="pending", kind="community", status="pending_approval")
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    car_lat, car_lon = offset(target[0], target[1], 270.0, 25.0)  # 25 m west of the target
    car = _cam(
        name="car", kind="in_car", lat=None, lon=None, device_id="bc-1", bearing_deg=0.0, fov_deg=120.0
    )

    def hb(t: datetime, lat: float, lon: float, heading: float) -> EventRecord:
        return EventRecord(
            event_id=uuid4(),
            occurred_at=t,
            type="device_heartbeat",
            source="bc-1",
            device_id="bc-1",
            lat=lat,
            lon=lon,
            payload={"heading_deg": heading},
        )

    def setup(s: Any) -> None:
        s.add_all([north_facing, east_facing, too_short, integrated, pending, car])
        # at 12:00 the car faces east (90°): the target is dead ahead; a minute later it is far away
        s.add(hb(at - timedelta(seconds=5), car_lat, car_lon, 90.0))
        s.add(hb(at + timedelta(seconds=60), *offset(LAT0, LON0, 180.0, 2000.0), 90.0))

    await store.write(setup)
    found = await store.read(lambda s: cameras_seeing(s, target[0], target[1], at))
    names = [v.name for v in found]
    assert names == ["integrated", "car", "north 350/40"]
    by = {v.name: v for v in found}
    assert by["integrated"].distance_m == pytest.approx(100.0, abs=0.2) and by["integrated"].live
    assert by["integrated"].bearing_deg == pytest.approx(180.0, abs=0.1)
    assert by["car"].distance_m == pytest.approx(25.0, abs=0.2) and by["car"].bearing_deg == pytest.approx(
        90.0, abs=0.1
    )
    assert by["north 350/40"].distance_m == pytest.approx(60.0, abs=0.2) and not by["north 350/40"].live
    # the car faces north instead: the target is 90° off its 120° view
    await store.write(lambda s: setattr(s.get(CameraRow, car.id), "bearing_deg", 270.0))
    assert "car" not in [v.name for v in await store.read(lambda s: cameras_seeing(s, *target, at))]
    # a time with no heartbeat near it: the car is nowhere
    later = at + timedelta(hours=1)
    assert [v.name for v in await store.read(lambda s: cameras_seeing(s, *target, later))] == [
        "integrated",
        "north 350/40",
    ]
