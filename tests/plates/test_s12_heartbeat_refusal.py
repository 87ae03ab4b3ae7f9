"""A refused plate-camera heartbeat names its reason, and blames the clock only for a time stamp.

Audit (session 12): every refusal ended in "check the camera's clock", also a device registered as
a body cam ("… but 'bwc-a' is registered as 'bodycam'; check the camera's clock").
"""

from __future__ import annotations

import asyncio

import pytest

from rtcc.plates.agent_health import BeatState, CameraHeartbeat
from rtcc.roles import DeviceType
from tests.conftest import StartCenter

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def test_a_wrong_device_type_refusal_does_not_blame_the_clock(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "health"))
    key = await c.center.provision_device("bwc-a", DeviceType.bodycam, "Body cam A", 33.5, -86.8)
    said: list[str] = []
    beat = CameraHeartbeat(c.url, "bwc-a", key, BeatState, say=said.append)
    assert await asyncio.to_thread(beat.beat) in ("rejected", "key")
    assert said, "the refusal is said"
    assert "clock" not in said[0]
