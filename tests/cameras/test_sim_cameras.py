"""The demo's simulated cameras: laid out deterministically, registered once, visible where they look."""

from __future__ import annotations

import math

import pytest

from rtcc.geo import bearing_deg, distance_m
from rtcc.roles import Role
from rtcc.settings import SimSettings
from rtcc.sim.cameras import plan
from rtcc.sim.city import build_city
from tests.cameras.helpers import signed_in
from tests.conftest import StartCenter
from tests.helpers import eventually


def test_plan_is_deterministic_and_faces_the_road() -> None:
    city = build_city(SimSettings(seed=7))
    a, b = plan(city), plan(build_city(SimSettings(seed=7)))
    assert a == b
    kinds = {k: sum(1 for c in a if c["kind"] == k) for k in ("city", "in_car", "community")}
    assert kinds["city"] >= 2 and kinds["in_car"] == len(city.units) and kinds["community"] >= 4
    live = [c for c in a if c.get("stream_url")]
    assert any(c["kind"] == "city" for c in live) and any(c["kind"] == "community" for c in live)
    assert all(c["stream_url"].startswith("synthetic://") for c in live)
    for c in a:
        if c["lat"] is not None:
            x, y = city.to_xy(c["lat"], c["lon"])
            assert city.contains_xy(x, y)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_demo_registers_cameras_and_one_is_live(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder", "health"), sim={"enabled": True, "patrol_units": 3})
    async with signed_in(center) as admin, signed_in(center, "officer1", Role.officer) as officer:

        async def cams() -> list[dict[str, object]] | None:
            items: list[dict[str, object]] = (await admin.get("/api/v1/cameras")).json()["items"]
            return items or None

        items = await eventually(cams, what="simulated cameras")

        async def cars_placed() -> list[dict[str, object]] | None:
            items: list[dict[str, object]] = (
                await admin.get("/api/v1/cameras", params={"kind": "in_car"})
            ).json()["items"]
            return items if items and all(c["lat"] is not None and c["position_at"] for c in items) else None

        cars = await eventually(cars_placed, what="in-car cameras placed by their body cams' heartbeats")
        assert len(cars) == 3 and all(str(c["device_id"]).startswith("bwc-") for c in cars)
        live = [c for c in items if c["live"]]
        assert live
        r = await officer.get(f"/api/v1/cameras/{live[0]['id']}/snapshot.jpg")
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
        # a point 20 m in front of a city camera is seen by it
        cam = next(c for c in items if c["kind"] == "city")
        lat0, lon0, b = float(cam["lat"]), float(cam["lon"]), float(cam["bearing_deg"])  # type: ignore[arg-type]
        dlat = 20.0 / 111_195 * math.cos(math.radians(b))
        dlon = 20.0 / (111_195 * math.cos(math.radians(lat0))) * math.sin(math.radians(b))
        r = await officer.get("/api/v1/cameras/visible", params={"lat": lat0 + dlat, "lon": lon0 + dlon})
        seen = {i["camera_id"]: i for i in r.json()["items"]}
        assert cam["id"] in seen
        assert seen[cam["id"]]["distance_m"] == pytest.approx(
            distance_m(lat0, lon0, lat0 + dlat, lon0 + dlon), abs=0.2
        )
        assert seen[cam["id"]]["bearing_deg"] == pytest.approx(
            bearing_deg(lat0, lon0, lat0 + dlat, lon0 + dlon), abs=0.2
        )
