"""A re-surveyed sensor is judged by its new position at once (audit s14).

After ``PUT /devices/{id}/position`` the pipeline's registry cache (reloaded every 30 s) still
held the old position: the next shot flagged the sensor again (right after the admin cleared
it) and located its pulse at the old place. A pulse far from the cached position now makes the
pipeline reload the registry (rate-limited) before judging it.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    Array,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

LOCATE_TOLERANCE_M = 3.0
"""Noise-free arrivals from 9 sensors at their (new) registered positions: within 3 m."""

MOVE_M = 250.0
"""How far east the re-surveyed sensor now stands (well beyond position_tolerance_m)."""


async def test_a_resurveyed_sensor_is_judged_by_its_new_position_at_once(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.97)
    admin, officer = clients[Role.admin], clients[Role.officer]
    sid = "ac-t05"  # the centre sensor: its pulse matters to the geometry
    nx, ny = arr.xy[sid][0] + MOVE_M, arr.xy[sid][1]
    lat, lon = arr.proj.to_latlon(nx, ny)
    r = await admin.put(
        f"/api/v1/devices/{sid}/position",
        json={"lat": lat, "lon": lon, "alt_m": 160.0, "reason": "re-surveyed after the pole moved"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["position_mismatch"] is False
    moved = Array(arr.keys, {**arr.xy, sid: (nx, ny)}, arr.proj)
    src = (120.0, -80.0)
    pulses = shot_pulses(moved, src)
    pulses.sort(key=lambda p: p.device != sid)  # posted first: in the window, never a late straggler
    await post_pulses(center, moved, pulses)

    async def one() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
        return items or None

    [inc] = await eventually(one, what="the incident")
    x, y, _ = arr.proj.to_xyz(inc["lat"], inc["lon"])
    assert math.dist((x, y), src) <= LOCATE_TOLERANCE_M
    [shot] = pipe.outcomes[0].shots
    assert sorted(shot.sensors) == sorted(arr.xy)  # every sensor used, the moved one included
    assert sid in inc["sensors"]
    assert center.center.metrics.get("acoustic_pulse_position_mismatch") == 0
    dev = (await admin.get(f"/api/v1/devices/{sid}")).json()
    assert dev["position_mismatch"] is False
