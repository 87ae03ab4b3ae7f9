"""A center outside the simulated city locates gunfire in its own frame (production audit, session 12).

The acoustic pipeline's local frame was centred on the simulator's city (Birmingham, AL) whatever
the deployment: sensors in Seattle were projected from 3,300 km away, where the azimuthal frame's
scale is 4.5 % off, and a shot was placed 21 m from where it was fired (with a ±9 m ellipse). With
no simulated city the frame is centred on the first registered sensor.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rtcc.acoustic.projection import Projection
from rtcc.geo import distance_m
from rtcc.roles import DeviceType, Role
from tests.acoustic.test_pipeline_helpers import (
    SENSOR_ALT_M,
    Array,
    pipeline_of,
    post_pulses,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

SEATTLE = (47.6062, -122.3321)


async def test_a_shot_in_another_city_is_placed_where_it_was_fired(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    proj = Projection(*SEATTLE)
    keys, xy = {}, {}
    for i in range(12):
        a = 2 * math.pi * i / 12
        r = 500.0 if i % 2 else 900.0
        x, y = r * math.cos(a), r * math.sin(a)
        sid = f"sea-{i:02d}"
        lat, lon = proj.to_latlon(x, y)
        keys[sid] = await center.center.provision_device(
            sid, DeviceType.acoustic_sensor, sid, lat, lon, {"alt_m": SENSOR_ALT_M}
        )
        xy[sid] = (x, y)
    arr = Array(keys, xy, proj)
    pipe = pipeline_of(center)
    await pipe.refresh_registry()
    use_classifier(pipe, 0.95)
    src = (180.0, 240.0)
    await post_pulses(center, arr, shot_pulses(arr, src, t_emit=datetime.now(UTC) - timedelta(seconds=8)))

    async def located() -> list[object] | None:
        return list(pipe.outcomes) or None

    (out,) = await eventually(located, what="the shot located")
    pos = out.incident.pos
    assert pos is not None
    truth = proj.to_latlon(*src)
    assert distance_m(pos.lat, pos.lon, *truth) < 2.0
