"""Sensors that deliver a shot far apart (issue 6: "no pulse lost"; the center after an outage).

When the center comes back after an outage, or one sensor's link is slow, each sensor's pulses of a
shot seconds old arrive on their own, more than the pipeline's quiet time (0.3 s) apart: every
sensor's pulses then make a window of their own, too few to locate. Pulses no fix used are held over
(``acoustic.pulse_holdover_s``) and join the later pulses of their bang, so the shot is located once
enough sensors are in. A pulse nobody joins is given up after the holdover and counted once.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

from rtcc.acoustic.pipeline import AcousticPipeline
from rtcc.events import Pulse
from tests.acoustic.test_pipeline_helpers import (
    BOTH,
    Array,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually

LOCATE_TOLERANCE_M = 3.0
GAP_S = 0.5
"""Between two sensors' deliveries: longer than the pipeline's quiet time, so each closes a window."""


async def _one_by_one(center: Running, arr: Array, pulses: list[Pulse]) -> None:
    by: dict[str, list[Pulse]] = {}
    for p in pulses:
        by.setdefault(p.device, []).append(p)
    for ps in by.values():
        await post_pulses(center, arr, ps)
        await asyncio.sleep(GAP_S)


async def _in_windows(pipe: AcousticPipeline) -> int:
    """Pulses in open windows or held over (0 once the pipeline has done with all of them)."""
    return sum(len(cl.pulses) for cl in pipe._clusters) + len(pipe._held)


@BOTH
async def test_a_burst_delivered_sensor_by_sensor_is_located(start_center: StartCenter) -> None:
    center = await start_center(acoustic={"levels_spl": True})
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.95)
    src = (80.0, -120.0)
    t0 = datetime.now(UTC) - timedelta(seconds=20)
    await _one_by_one(center, arr, shot_pulses(arr, src, t_emit=t0, rounds=(0.0, 0.3, 0.6)))

    async def three() -> list[object] | None:
        outs = [o for o in pipe.outcomes if o.incident.rounds == 3]
        return outs or None

    await eventually(three, what="the three rounds located")
    incidents = {o.incident.incident_id for o in pipe.outcomes}
    assert len(incidents) == 1, "one incident, no ghost from the partial windows"
    shots = [s for o in pipe.outcomes for s in o.shots]
    assert len(shots) == 3
    for s in shots:
        x, y, _ = arr.proj.to_xyz(s.pos.lat, s.pos.lon)
        assert math.dist((x, y), src) <= LOCATE_TOLERANCE_M
    last = pipe.outcomes[-1]
    assert last.status == "alerted"
    assert center.center.metrics.get("acoustic_unlocated") == 0


@BOTH
async def test_a_pulse_nobody_joins_is_given_up_once(start_center: StartCenter) -> None:
    center = await start_center(acoustic={"pulse_holdover_s": 1.0})
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    lone = [p for p in shot_pulses(arr, (0.0, 0.0)) if p.device == "ac-t01"]
    await post_pulses(center, arr, lone)

    async def given_up() -> bool:
        return center.center.metrics.get("acoustic_unlocated", reason="too_few_sensors") == 1

    await eventually(given_up, what="the lone pulse given up")
    assert await _in_windows(pipe) == 0
    await asyncio.sleep(1.5)  # later expiry passes do not count it again
    assert center.center.metrics.get("acoustic_unlocated") == 1
    assert pipe.outcomes == []
