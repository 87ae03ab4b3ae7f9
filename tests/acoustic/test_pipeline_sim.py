"""The simulated city's gunfire through the whole center: real ingest, real localizer, incidents on the API.

Runs the center with the simulator on (as ``rtcc demo`` does, sped up) and
compares the incidents with the simulator's ground truth.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.conftest import Running, StartCenter
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

TRUTH_TOLERANCE_M = 25.0
"""Simulated arrivals carry jitter, blocked paths and echoes: incidents within 25 m of a true source."""


async def test_demo_gunfire_becomes_located_incidents(start_center: StartCenter) -> None:
    center: Running = await start_center(
        sim={"enabled": True, "speedup": 60.0, "heartbeat_s": 10.0, "patrol_units": 0, "extent_m": 1600.0}
    )
    admin = await center.login("admin")
    try:

        async def incidents() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (await admin.get("/api/v1/gunshots")).json()["items"]
            return items if len(items) >= 2 else None

        items = await eventually(incidents, timeout=90, what="incidents from the simulated gunfire")
    finally:
        await admin.aclose()
    truth_path = center.settings.data_dir / "sim-truth.jsonl"
    assert center.center.sim is not None
    center.center.sim.truth.flush()
    facts = [json.loads(line) for line in truth_path.read_text().splitlines()]
    shots = [f for f in facts if f["kind"] == "gunfire" and f["event_kind"] != "knock"]
    assert shots
    proj = center.center.sim.city
    for inc in items:
        x, y = proj.to_xy(inc["lat"], inc["lon"])
        nearest = min(math.dist((x, y), (f["x"], f["y"])) for f in shots)
        assert nearest <= TRUTH_TOLERANCE_M, (inc, nearest)
        assert inc["status"] in ("alerted", "pending_review", "below_threshold")
